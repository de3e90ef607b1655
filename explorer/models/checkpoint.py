"""Checkpoints: a folder with ``model.safetensors`` and ``config.json``; never pickle.

``config.json`` holds ``{"format": "explorer-checkpoint", "version": 1, "family": ...,
"config": {...}, "name": ..., "meta": {...}}``. Loading rebuilds the architecture from the
config and copies the tensors in strictly, so a file from another model is refused.

>>> import tempfile
>>> from explorer.models import zoo
>>> model = zoo.mnist_mlp(hidden=(8,))
>>> folder = tempfile.mkdtemp() + "/mlp"
>>> _ = save_checkpoint(model, folder, meta={"note": "untrained"})
>>> is_checkpoint(folder), read_header(folder)["meta"]
(True, {'note': 'untrained'})
>>> again = load_checkpoint(folder)
>>> torch.equal(again(torch.ones(1, 1, 28, 28)), model(torch.ones(1, 1, 28, 28)))
True
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from explorer._atomic import replace, write_durable
from explorer._inside import inside
from explorer.models.builders import build
from explorer.models.config import config_from_dict
from explorer.models.handle import ModelHandle

FORMAT = "explorer-checkpoint"
VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def is_checkpoint(path: str | os.PathLike[str]) -> bool:
    p = Path(path)
    if not (p / CONFIG).is_file():
        return False
    try:
        return json.loads((p / CONFIG).read_text()).get("format") == FORMAT
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return False


def checkpoint_files(
    model: ModelHandle, meta: dict[str, Any] | None = None, *, dtype: torch.dtype | None = None
) -> dict[str, bytes]:
    """The bytes of a checkpoint folder, ``{file name: bytes}`` (weights first, config last).

    ``dtype`` (e.g. ``torch.float16``) stores floating-point tensors in that type, to ship a
    small file; loading casts them back to the model's own dtype."""
    if model.config is None:
        raise ValueError(
            f"{model.name} has no explorer config (a custom nn.Module): save its state_dict "
            "and reload with explorer.load(path, module=YourModule())"
        )
    tensors = {
        k: _stored(v.detach().cpu(), dtype).contiguous().clone()
        for k, v in model.model.state_dict().items()
    }
    header = {
        "format": FORMAT,
        "version": VERSION,
        "family": model.config.family,
        "config": model.config.to_dict(),
        "name": model.name,
        "input_shape": list(model.input_shape) if model.input_shape else None,
        "meta": meta or {},
    }
    return {WEIGHTS: save(tensors), CONFIG: json.dumps(header, indent=2).encode()}


def save_checkpoint(
    model: ModelHandle,
    path: str | os.PathLike[str],
    meta: dict[str, Any] | None = None,
    *,
    dtype: torch.dtype | None = None,
) -> Path:
    """Save weights and config; each is written to a temporary file, fsynced and renamed
    (config last), so a crash mid-save never leaves a half-written file under its name.
    (A training run publishes a whole checkpoint at once: ``explorer.training.Run``.)"""
    files = checkpoint_files(model, meta, dtype=dtype)
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        write_durable(out / (name + ".tmp"), data)
    for name in files:
        replace(out / (name + ".tmp"), out / name)
    return out


def _stored(tensor: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    if dtype is None or not tensor.is_floating_point():
        return tensor
    # -inf masks stay -inf in float16; finite values beyond its range would not survive
    finite = tensor[torch.isfinite(tensor)]
    if finite.numel() and float(finite.abs().max()) > torch.finfo(dtype).max:
        raise ValueError(f"weights exceed the range of {dtype}: save them in float32")
    return tensor.to(dtype)


def read_tagged_json(file: Path, fmt: str, version: int, what: str, missing: str) -> dict[str, Any]:
    """The JSON object in ``file``, checked to carry ``"format": fmt`` and a version this
    explorer reads; each failure names the file and what it should have been."""
    if not file.is_file():
        raise FileNotFoundError(f"no {file.name} in {str(file.parent)!r}: {missing}")
    try:
        data = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{what} {str(file)!r} is not valid JSON: {err}") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise ValueError(f"{str(file)!r} is not an explorer {what} (format != {fmt!r})")
    found = data.get("version", 0)
    if isinstance(found, bool) or not isinstance(found, int):
        raise ValueError(
            f"{what} {str(file)!r} has format version {found!r}; a version is a whole number "
            f"(this explorer reads 1..{version})"
        )
    if found > version:
        raise ValueError(
            f"{what} {str(file)!r} has format version {data['version']}; this explorer "
            f"reads up to {version}: upgrade explorer"
        )
    return data


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    return read_tagged_json(
        Path(path) / CONFIG, FORMAT, VERSION, "checkpoint config", "not an explorer checkpoint"
    )


def read_weights(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    p = Path(path) / WEIGHTS
    if not p.is_file():
        raise FileNotFoundError(f"no {WEIGHTS} in {str(path)!r}")
    try:
        return load_file(str(p))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ValueError(
            f"checkpoint weights {str(p)!r} are corrupt or not safetensors: {err}"
        ) from None


def load_state(model: ModelHandle, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy ``state`` into ``model`` strictly, naming missing, extra and mis-shaped tensors."""
    own = model.model.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if state[k].shape != own[k].shape
    ]
    if missing or extra or shapes:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}")
        if extra:
            parts.append(f"unexpected {extra[:5]}")
        if shapes:
            parts.append(f"shape mismatch {shapes[:5]}")
        raise ValueError(f"checkpoint {source!r} does not fit {model.name}: " + "; ".join(parts))
    params = dict(model.model.named_parameters())  # buffers such as attention masks hold -inf
    for key, value in state.items():
        if key in params and not torch.isfinite(value).all():
            raise ValueError(f"checkpoint {source!r} has NaN or infinite values in {key}")
    model.model.load_state_dict(state, strict=True)


def tensor_shapes(file: str | os.PathLike[str]) -> dict[str, tuple[int, ...]]:
    """``{name: shape}`` of a safetensors file, read from its header alone (no tensor is loaded).

    The format: 8 bytes (little-endian length ``n``), then ``n`` bytes of JSON mapping each
    tensor name to its dtype, shape and byte offsets.
    """
    p = Path(file)
    size = p.stat().st_size
    with open(p, "rb") as fh:
        head = fh.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 2 <= n <= min(size - 8, 100_000_000):
            raise ValueError(
                f"weights {str(p)!r} are corrupt or not safetensors (bad header length)"
            )
        try:
            header = json.loads(fh.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(
                f"weights {str(p)!r} have an unreadable safetensors header: {err}"
            ) from None
    if not isinstance(header, dict):
        raise ValueError(f"weights {str(p)!r} have an unreadable safetensors header")
    try:
        return {
            k: tuple(int(d) for d in v["shape"]) for k, v in header.items() if k != "__metadata__"
        }
    except (TypeError, KeyError, ValueError):
        raise ValueError(f"weights {str(p)!r} have an unreadable safetensors header") from None


def check_config_fits_weights(cfg: Any, file: Path, source: str) -> None:
    """Refuse a config whose parameters differ from the weights file's, before building it."""
    have = tensor_shapes(file)
    want = cfg.weight_shapes()
    missing = [k for k in want if k not in have]
    wrong = [
        f"{k}: config {want[k]} vs file {have[k]}" for k in want if k in have and have[k] != want[k]
    ]
    if not missing and not wrong:
        return
    hint = ""
    if cfg.family == "transformer":
        layers = {int(k.split(".")[1]) for k in have if k.startswith("blocks.")}
        n_file = max(layers) + 1 if layers else 0
        if n_file != cfg.n_layers:
            hint = f" config.json says n_layers {cfg.n_layers}, the weights hold {n_file} layers."
    parts = []
    if missing:
        parts.append(f"{len(missing)} tensors missing from the file (e.g. {missing[:3]})")
    if wrong:
        parts.append(f"shapes differ: {wrong[:3]}")
    raise ValueError(
        f"checkpoint {source!r}: config.json does not match model.safetensors ({'; '.join(parts)})."
        f"{hint} Nothing was built: fix config.json or use the weights it was saved with."
    )


def load_checkpoint(path: str | os.PathLike[str]) -> ModelHandle:
    """Rebuild a model saved by ``save_checkpoint``.

    The config is checked (types, ranges) and compared with the tensor shapes in the weights
    file's header before the model is built, so a bad ``config.json`` fails in milliseconds.
    """
    for name in (CONFIG, WEIGHTS):  # a symlink out of the folder is never followed
        inside(Path(path), name, what=f"checkpoint file {name!r}")
    header = read_header(path)
    if not isinstance(header.get("config"), dict) or not isinstance(header.get("family"), str):
        raise ValueError(
            f"checkpoint config in {str(path)!r} is incomplete: it needs 'family' (a string) "
            "and 'config' (an object)"
        )
    try:
        cfg = config_from_dict(header["family"], header["config"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"checkpoint config in {str(path)!r} is invalid: {err}") from None
    weights = Path(path) / WEIGHTS
    if not weights.is_file():
        raise FileNotFoundError(f"no {WEIGHTS} in {str(path)!r}")
    check_config_fits_weights(cfg, weights, str(path))
    model = build(cfg, name=header.get("name"), light=True)  # no transformer-lens import
    load_state(model, read_weights(path), str(path))
    model.model.eval()
    return model
