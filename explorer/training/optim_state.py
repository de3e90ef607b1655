"""Optimizer state on disk without pickle: tensors in safetensors, the rest in JSON.

``torch.optim.Optimizer.state_dict()`` is ``{"state": {param index: {name: tensor or
number}}, "param_groups": [{hyperparameters..., "params": [indices]}]}``. Tensors go to
``optimizer.safetensors`` under ``"{index}.{name}"``; numbers and the param groups go to
``optimizer.json``. Both files carry the step they were taken at (the JSON's ``"step"`` and
the safetensors metadata's ``"step"``), and a loader given the step it expects refuses
state from any other step, so tensors from one step are never used with weights of another.
A training run writes both files inside the checkpoint folder they belong to and publishes
them together (``explorer.training.run``).

>>> import tempfile
>>> layer = torch.nn.Linear(2, 1)
>>> opt = torch.optim.Adam(layer.parameters())
>>> layer(torch.ones(1, 2)).sum().backward(); opt.step()
>>> folder = Path(tempfile.mkdtemp())
>>> for name, data in optimizer_files(opt, step=1).items():
...     _ = (folder / name).write_bytes(data)
>>> fresh = torch.optim.Adam(layer.parameters())
>>> load_optimizer_state(fresh, folder, step=1), torch.equal(
...     fresh.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
(1, True)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

TENSORS = "optimizer.safetensors"
HEADER = "optimizer.json"
FORMAT = "explorer-optimizer-state"

__all__ = ["load_optimizer_state", "optimizer_files"]


def optimizer_files(optimizer: torch.optim.Optimizer, step: int) -> dict[str, bytes]:
    """``{file name: bytes}`` of ``optimizer``'s state after ``step`` updates."""
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
    meta = {"step": str(int(step))}  # one key: safetensors writes a map's keys in random order
    return {
        TENSORS: save(tensors, metadata=meta),
        HEADER: json.dumps(header, indent=1).encode(),
    }


def has_optimizer_state(folder: Path) -> bool:
    return (folder / HEADER).is_file() and (folder / TENSORS).is_file()


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, folder: Path, step: int | None = None
) -> int | None:
    """Load the state saved in ``folder`` into ``optimizer``; its step, or None if there is none.

    With ``step``, state taken at any other step is refused. A damaged file raises a
    ``ValueError`` naming it (never a raw safetensors error).
    """
    if not has_optimizer_state(folder):
        return None
    try:
        header = json.loads((folder / HEADER).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(
            f"optimizer state {str(folder / HEADER)!r} is not valid JSON: {err}"
        ) from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{str(folder / HEADER)!r} is not an explorer optimizer state")
    if header.get("optimizer") != type(optimizer).__name__:
        raise ValueError(
            f"the saved optimizer state is for {header.get('optimizer')}, "
            f"not {type(optimizer).__name__}: resume with the same optimizer"
        )
    try:
        tensors = {}
        with safe_open(str(folder / TENSORS), framework="pt") as fh:
            meta = fh.metadata() or {}
            for key in fh.keys():
                tensors[key] = fh.get_tensor(key)
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ValueError(
            f"optimizer state {str(folder / TENSORS)!r} is corrupt or not safetensors ({err}); "
            "Run.repair() drops damaged checkpoints so training resumes from an intact one"
        ) from None
    steps = {"optimizer.json": header.get("step"), TENSORS: _int(meta.get("step"))}
    if step is not None:
        wrong = {k: v for k, v in steps.items() if v is not None and v != step}
        if wrong or steps["optimizer.json"] is None:
            raise ValueError(
                f"the optimizer state in {str(folder)!r} is from step(s) {wrong or steps} but "
                f"belongs to the checkpoint of step {step}: refusing to train with it"
            )
    elif steps[TENSORS] is not None and steps[TENSORS] != header.get("step"):
        raise ValueError(f"the optimizer files in {str(folder)!r} are from different steps {steps}")
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


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, tuple):
        return list(value)
    return value
