"""Optimizer state on disk without pickle: tensors in safetensors, the rest in JSON.

``torch.optim.Optimizer.state_dict()`` is ``{"state": {param index: {name: tensor or
number}}, "param_groups": [{hyperparameters..., "params": [indices]}]}``. Tensors go to
``optimizer.safetensors`` under ``"{index}.{name}"``; numbers and the param groups go to
``optimizer.json``. Both are written to temporary names and renamed, JSON last, so the JSON
(which records the step) never describes tensors that were not fully written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

TENSORS = "optimizer.safetensors"
HEADER = "optimizer.json"
FORMAT = "explorer-optimizer-state"


def save_optimizer_state(optimizer: torch.optim.Optimizer, folder: Path, step: int) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    numbers: dict[str, dict[str, Any]] = {}
    for index, entries in state_dict["state"].items():
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{name}"] = value.detach().cpu().contiguous().clone()
            else:
                numbers.setdefault(str(index), {})[name] = _plain(value)
    groups = [{k: _plain(v) for k, v in group.items()} for group in state_dict["param_groups"]]
    header = {
        "format": FORMAT,
        "step": int(step),
        "optimizer": type(optimizer).__name__,
        "param_groups": groups,
        "numbers": numbers,
    }
    tmp_tensors, tmp_header = folder / (TENSORS + ".tmp"), folder / (HEADER + ".tmp")
    save_file(tensors, str(tmp_tensors))
    tmp_header.write_text(json.dumps(header, indent=1), encoding="utf-8")
    os.replace(tmp_tensors, folder / TENSORS)
    os.replace(tmp_header, folder / HEADER)


def load_optimizer_state(optimizer: torch.optim.Optimizer, folder: Path) -> int | None:
    """Load the state saved in ``folder`` into ``optimizer``; None if there is none."""
    from safetensors.torch import load_file

    if not (folder / HEADER).is_file() or not (folder / TENSORS).is_file():
        return None
    header = json.loads((folder / HEADER).read_text(encoding="utf-8"))
    if header.get("format") != FORMAT:
        raise ValueError(f"{str(folder / HEADER)!r} is not an explorer optimizer state")
    if header["optimizer"] != type(optimizer).__name__:
        raise ValueError(
            f"the saved optimizer state is for {header['optimizer']}, "
            f"not {type(optimizer).__name__}: resume with the same optimizer"
        )
    tensors = load_file(str(folder / TENSORS))
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for index, entries in header["numbers"].items():
        state.setdefault(int(index), {}).update(entries)
    groups = []
    for group in header["param_groups"]:
        group = dict(group)
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
        groups.append(group)
    if len(groups) != len(optimizer.param_groups) or any(
        len(g["params"]) != len(own["params"]) for g, own in zip(groups, optimizer.param_groups)
    ):
        raise ValueError("the saved optimizer state was made for a different set of parameters")
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    return int(header["step"])


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, tuple):
        return list(value)
    return value
