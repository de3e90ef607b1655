"""``explorer.models.load``: any model source this layer knows to a ``ModelHandle``.

Configs, modules, checkpoints, shipped checkpoints, safetensors files and Hugging Face
models. Training runs belong to the ``training`` layer above; ``explorer.load`` (the
top-level facade, ``explorer._load``) opens them and hands everything else to this function.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from explorer.models import _tl, checkpoint, hf
from explorer.models._handle_base import HandleBase
from explorer.models.builders import build, wrap
from explorer.models.config import CNNConfig, MLPConfig, TransformerConfig
from explorer.models.handle import ModelHandle
from explorer.models.light import is_light
from explorer.models.shipped import load_shipped

__all__ = ["load", "remap_keys", "wrap"]


def load(
    source: Any,
    *,
    input_shape: Sequence[int] | None = None,
    image_shape: Sequence[int] | None = None,
    module: nn.Module | None = None,
    key_map: Mapping[str, str] | None = None,
    local_path: str | os.PathLike[str] | None = None,
    step: int | None = None,
    name: str | None = None,
    tokenizer: Any | None = None,
    backend: str = "transformer-lens",
    **backend_options: Any,
) -> ModelHandle:
    """Open a model from any source explorer knows.

    Args:
        source: a ``ModelHandle`` (returned as is); a ``TransformerConfig``/``MLPConfig``/
            ``CNNConfig`` (a fresh seeded model); a transformer-lens ``HookedTransformer``;
            a ``transformers`` model object or a folder written by its ``save_pretrained``
            (GPT-2, GPT-NeoX, Llama, Qwen2, Gemma, Mistral, BERT: converted to
            transformer-lens offline, logit parity in the repr; see ``explorer.models.hf``);
            a plain ``nn.Module`` (hook points added on its layers); a checkpoint folder
            saved by explorer (``explorer.load`` also opens training runs);
            ``"shipped:<name>"`` for a trained checkpoint shipped with explorer (offline);
            or a Hugging Face model name (needs internet; offline it fails at once and
            says how to pass a folder).
        input_shape: for plain modules: the shape of one input as ``forward`` takes it
            (``(1, 28, 28)``; ``(784,)`` for an MLP on flat pixels). Checked by one forward
            pass on zeros, which fails naming the shape the first layer expects; inferred
            when the first layer is a Linear on the input.
        image_shape: ``(C, H, W)`` the image tools show and optimise (attribution maps,
            ``maximize_activation``, weight images, top examples, ``audit``), when the
            model takes its input flat; inferred for ``H*W`` or ``3*H*W`` values, ``H == W``.
        module: for a bare safetensors file (or a folder holding ``model.safetensors``) of
            a custom module's weights: an instance to load them into (strictly: every key).
        key_map: with ``module``: rename key prefixes of the file before loading, e.g.
            ``{"0.": "1.", "2.": "3."}`` for weights saved from ``Sequential(Linear, ReLU,
            ...)`` going into ``Sequential(Flatten(), Linear, ReLU, ...)``. Plain data: the
            longest matching prefix is replaced, once.
        name: the handle's name (also for a path: a checkpoint, run or folder).
        local_path: for a Hugging Face name: a folder with its files (same as passing it).
        step: for a checkpoint folder: the step it must have been saved at (runs: see
            ``explorer.load``).
        tokenizer: for a ``transformers`` model object: its tokenizer (default: the one
            saved beside it, when the model was read from a local folder).
        backend: for a Hugging Face model or folder: ``"transformer-lens"`` (converted, the
            default) or ``"nnsight"`` (kept as it is, run as nnsight traces: for models too
            large to copy; see docs/scale.md). nnsight options: ``remote=True`` (run on an
            NDIF server, nnsight's own remote execution; a URL string names the server,
            ``"local"`` runs nnsight's simulation), ``device=``, ``device_map=``
            (accelerate's ``"auto"`` for several GPUs on one host), ``max_saved_bytes=``
            (a trace that saves more raises), ``trace_kwargs=``. On both backends:
            ``dtype=`` (a folder loads in its saved dtype otherwise; a model object is
            cast) and ``allow_mismatch=True`` (take a converted handle whose logit parity
            fails, which is otherwise refused with its figure).

    >>> import explorer
    >>> from explorer.models.config import MLPConfig
    >>> explorer.load(MLPConfig(hidden=(16,))).hook_names
    ['hook_input', 'hook_logits', 'blocks.0.mlp.hook_pre', 'blocks.0.mlp.hook_post']
    """
    hf_options = {k: backend_options.pop(k) for k in hf.HF_OPTIONS if k in backend_options}
    hf_source = hf.is_hf_model(source) or (
        isinstance(source, (str, os.PathLike)) and hf.is_hf_folder(Path(source))
    )
    if hf_options and not (hf_source or local_path is not None):
        raise ValueError(
            f"{', '.join(sorted(hf_options))} apply to Hugging Face models and folders, not "
            f"a {type(source).__name__}"
        )
    if backend != "transformer-lens":
        if backend not in hf.BACKENDS:
            raise ValueError(f"unknown backend {backend!r}: choose one of {', '.join(hf.BACKENDS)}")
        if not hf_source:
            raise ValueError(
                f"backend={backend!r} opens Hugging Face models and folders (GPT-2, "
                f"GPT-NeoX, Llama, Qwen2, Gemma, Mistral), not a {type(source).__name__}"
            )
        if hf.is_hf_model(source):
            return hf.load_model(
                source,
                tokenizer=tokenizer,
                name=name,
                backend=backend,
                **hf_options,
                **backend_options,
            )
        return hf.load_folder(
            Path(source), name=name, backend=backend, **hf_options, **backend_options
        )
    if backend_options:
        raise ValueError(f"{', '.join(sorted(backend_options))} apply to backend='nnsight' only")
    if key_map is not None and not isinstance(source, (str, os.PathLike)):
        raise ValueError("key_map renames the keys of a weights file: pass the file's path")
    if isinstance(source, HandleBase):  # any backend's handle
        return source
    if isinstance(source, (TransformerConfig, MLPConfig, CNNConfig)):
        return build(source, name=name)
    if hf.is_hf_model(source):
        return hf.load_model(source, tokenizer=tokenizer, name=name, **hf_options)
    if _tl.is_hooked_transformer(source) or is_light(source):
        return ModelHandle(
            source, kind="tokens", config=_tl.config_of(source), name=name or "transformer"
        )
    if isinstance(source, nn.Module):
        return wrap(source, input_shape=input_shape, image_shape=image_shape, name=name)
    if isinstance(source, str) and source.startswith("shipped:"):
        return load_shipped(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.exists():
            handle = _load_path(
                path,
                module=module,
                input_shape=input_shape,
                image_shape=image_shape,
                step=step,
                key_map=key_map,
                name=name,
                hf_options=hf_options,
            )
            if name is not None:
                handle.name = name
            return handle
        if isinstance(source, os.PathLike) or str(source).startswith((".", "/", "~")):
            raise FileNotFoundError(f"no such file or folder: {str(source)!r}")
        if local_path is not None:
            if not hf.is_hf_folder(Path(local_path)):
                raise FileNotFoundError(
                    f"local_path {str(local_path)!r} is not a folder with a Hugging Face "
                    "config.json (save_pretrained writes one)"
                )
            return hf.load_folder(Path(local_path), name=name or str(source), **hf_options)
        if hf.offline():  # before importing transformer-lens: seconds the user can't use
            raise hf.offline_error(str(source))
        model = _tl.from_pretrained(str(source))
        handle = ModelHandle(
            model,
            kind="tokens",
            config=_tl.config_of(model),
            name=str(source),
            tokenizer=getattr(model, "tokenizer", None),
        )
        handle.prepend_bos = bool(getattr(model.cfg, "default_prepend_bos", True))
        return handle
    raise TypeError(
        f"cannot load a {type(source).__name__}: pass a path, a model name, an nn.Module, "
        "a HookedTransformer, a config, or a ModelHandle"
    )


def _load_path(
    path: Path,
    *,
    module: nn.Module | None,
    input_shape: Sequence[int] | None,
    image_shape: Sequence[int] | None,
    step: int | None,
    key_map: Mapping[str, str] | None,
    name: str | None,
    hf_options: dict[str, Any],
) -> ModelHandle:
    if (path / "manifest.json").is_file():
        raise ValueError(
            f"{str(path)!r} is a training run (it has a manifest.json): open it with "
            "explorer.load(path, step=...), which reads runs, or "
            "explorer.training.Run.open(path).load_model(step)"
        )
    config = path / checkpoint.CONFIG
    if path.is_dir() and config.is_file():
        try:
            json.loads(config.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(
                f"{str(config)!r} is not valid JSON ({err}): the folder has a config.json, "
                "but it is damaged or was edited by hand"
            ) from None
    if checkpoint.is_checkpoint(path):
        if step is not None:
            saved = checkpoint.read_header(path).get("meta", {}).get("step")
            if saved != step:
                raise ValueError(
                    f"step={step} selects a checkpoint of a training run, but {str(path)!r} is "
                    "a single checkpoint"
                    + (f" (saved at step {saved})" if saved is not None else "")
                    + ": load it without step, or pass the run folder"
                )
        return checkpoint.load_checkpoint(path)
    if module is None and hf.is_hf_folder(path):
        return hf.load_folder(path, name=name, **hf_options)
    if key_map is not None and module is None:
        raise ValueError("key_map renames the keys of a weights file loaded with module=...")
    if module is not None:
        return _load_into(path, module, input_shape, image_shape, key_map, name)
    if path.is_file():
        raise ValueError(
            f"{str(path)!r} is a file; explorer loads checkpoint folders (config.json + "
            "model.safetensors). For a bare safetensors file of a custom model pass module=..."
        )
    raise ValueError(
        f"{str(path)!r} is not an explorer checkpoint or run: expected config.json with "
        "format 'explorer-checkpoint' and model.safetensors, or a run's manifest.json"
    )


def _load_into(
    path: Path,
    module: nn.Module,
    input_shape: Sequence[int] | None,
    image_shape: Sequence[int] | None,
    key_map: Mapping[str, str] | None,
    name: str | None,
) -> ModelHandle:
    """A bare safetensors file (or a folder's ``model.safetensors``) loaded into ``module``."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be an nn.Module instance, got {type(module).__name__}")
    file = path / checkpoint.WEIGHTS if path.is_dir() else path
    try:
        state = load_file(str(file))
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{str(file)!r} is corrupt or not a safetensors file: {err}") from None
    if key_map is not None:
        state = remap_keys(state, key_map, wanted=module.state_dict().keys())
    handle = wrap(module, input_shape=input_shape, image_shape=image_shape, name=name)
    prefixed = {f"module.{k}": v for k, v in state.items()}
    checkpoint.load_state(handle, prefixed, str(file))
    return handle


def remap_keys(
    state: Mapping[str, Any], key_map: Mapping[str, str], wanted: Iterable[str] = ()
) -> dict[str, Any]:
    """``state`` with key prefixes renamed by ``key_map`` (the longest matching prefix,
    replaced once); a prefix that matches no key, two keys that land on one name, or keys
    that still do not fit ``wanted`` (the module's own keys) fail, listing them.

    >>> remap_keys({"0.weight": 1, "2.weight": 2}, {"0.": "1.", "2.": "3."})
    {'1.weight': 1, '3.weight': 2}
    """
    if not isinstance(key_map, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) and k for k, v in key_map.items()
    ):
        raise TypeError(
            "key_map must be a dict of old key prefix -> new prefix (non-empty strings), got "
            f"{key_map!r}"
        )
    prefixes = sorted(key_map, key=len, reverse=True)
    out: dict[str, Any] = {}
    used: set[str] = set()
    for key, value in state.items():
        prefix = next((p for p in prefixes if key.startswith(p)), None)
        new = key if prefix is None else key_map[prefix] + key[len(prefix) :]
        if prefix is not None:
            used.add(prefix)
        if new in out:
            raise ValueError(f"key_map sends two keys of the file to {new!r}")
        out[new] = value
    unused = [p for p in key_map if p not in used]
    if unused:
        raise ValueError(
            f"key_map prefixes {unused} match no key of the file (its keys: {sorted(state)[:8]})"
        )
    wanted = set(wanted)
    if wanted:
        missing, extra = sorted(wanted - set(out)), sorted(set(out) - wanted)
        if missing or extra:
            raise ValueError(
                f"after key_map the file's keys do not fit the module: missing {missing[:8]}, "
                f"unexpected {extra[:8]} (the module's keys: {sorted(wanted)[:8]})"
            )
    return out
