"""Hugging Face language models, offline: a local folder or a model object, in transformer-lens.

``explorer.load(folder)`` (a folder written by ``save_pretrained``: ``config.json``, weights,
and a tokenizer when present) or ``explorer.load(model)`` (a ``transformers`` model object)
comes here. Nothing is fetched from the Hub: the transformer-lens config is built from the
local ``config.json`` and the weights are converted with transformer-lens's per-family
converters. The families (``FAMILIES``, in ``_hf_convert``):

- decoders, as ``HookedTransformer``: GPT-2, GPT-NeoX/Pythia, Llama, Qwen2, Gemma, Mistral;
- encoder, as ``HookedEncoder``: BERT (``BertForMaskedLM``).

Weights are loaded unprocessed (no LayerNorm folding, no centering), so every hook reads
what the Hugging Face model computes. Each load runs the Hugging Face model and the converted
one on a short fixed input and records the largest absolute logit difference (``Parity``,
shown in the handle's repr). Other decoders transformer-lens knows (OPT, GPT-J, GPT-Neo,
Bloom, Qwen3, ...) go through its own config reader and converter, kept only when the parity
holds. Any other architecture opens through the plain-module route (``explorer.load(nn.Module)``)
with a warning that says what works there.

A bare name (``explorer.load("gpt2")``) still goes through ``HookedTransformer.from_pretrained``
when the Hub is reachable; offline (``HF_HUB_OFFLINE=1``, or no route to the Hub) it fails at
once with how to pass a folder (``offline_error``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from explorer.models import _nnsight, _tl
from explorer.models._hf_convert import (
    FAMILIES,
    MAX_CTX,
    NOT_CONVERTED,
    PREPEND_BOS,
    Parity,
    Unconvertible,
    check_parity,
    converted,
    tl_config,
    tl_converted,
)
from explorer.models._hf_folder_checks import check_folder
from explorer.models.builders import wrap
from explorer.models.handle import ModelHandle

__all__ = [
    "BACKENDS",
    "FAMILIES",
    "HF_OPTIONS",
    "MAX_CTX",
    "PREPEND_BOS",
    "Parity",
    "check_parity",
    "is_hf_folder",
    "is_hf_model",
    "load_folder",
    "load_model",
    "load_tokenizer",
    "offline",
    "offline_error",
    "tl_config",
]

BACKENDS = ("transformer-lens", "nnsight")
# options of a Hugging Face load that both backends take
HF_OPTIONS = ("dtype", "allow_mismatch")


# ------------------------------------------------------------------ recognising sources
def is_hf_model(obj: object) -> bool:
    """A ``transformers`` model object (checked without importing transformers)."""
    if not any(c.__module__.startswith("transformers.") for c in type(obj).__mro__):
        return False
    # lazy: reached only for objects whose class comes from transformers (checked above)
    from transformers import PreTrainedModel

    return isinstance(obj, PreTrainedModel)


def is_hf_folder(path: Path) -> bool:
    """A folder with a Hugging Face ``config.json`` (one naming its architecture or model type)."""
    file = path / "config.json"
    if not (path.is_dir() and file.is_file()):
        return False
    try:
        config = json.loads(file.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and ("architectures" in config or "model_type" in config)


def offline() -> bool:
    """True when the Hub must not (``HF_HUB_OFFLINE``) or cannot (no route) be reached."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return True
    try:
        socket.create_connection(("huggingface.co", 443), timeout=3).close()
    except OSError:
        return True
    return False


def offline_error(name: str) -> OSError:
    """The error for a bare model name without the Hub: how to pass a folder instead.

    >>> print(offline_error("EleutherAI/pythia-70m"))  # doctest: +ELLIPSIS
    cannot download 'EleutherAI/pythia-70m': ... then `explorer.load('/path/to/pythia-70m')` ...
    """
    short = name.split("/")[-1]
    return OSError(
        f"cannot download {name!r}: the Hugging Face Hub is not reachable here (offline). "
        f"Pass a local folder instead: on a machine with internet run "
        f"`AutoModelForCausalLM.from_pretrained({name!r}).save_pretrained('{short}')` and "
        f"`AutoTokenizer.from_pretrained({name!r}).save_pretrained('{short}')`, copy the "
        f"folder here, then `explorer.load('/path/to/{short}')` (or pass the model object)"
    )


# ------------------------------------------------------------------------- loading
def load_folder(
    path: Path,
    *,
    name: str | None = None,
    backend: str = "transformer-lens",
    dtype: Any = None,
    allow_mismatch: bool = False,
    **backend_options: Any,
) -> Any:
    """Open a folder written by ``save_pretrained`` (weights, config, tokenizer if present),
    in the dtype it was saved in (``dtype=`` another; ``allow_mismatch`` as ``load_model``).

    ``backend_options`` (nnsight backend): ``device_map`` goes to ``from_pretrained``
    (accelerate's ``"auto"`` spreads a model over the GPUs of one host); the others to
    ``load_model``."""
    check_folder(path)  # before transformers, which would ask to run a folder's own code
    device_map = backend_options.pop("device_map", None)
    dtype = _check_dtype(dtype)
    # lazy: opening a Hugging Face folder is the one path that needs the Auto classes
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM

    if not any(path.glob("*.safetensors")):
        pickled = sorted(p.name for p in path.glob("*.bin"))
        raise ValueError(
            f"{str(path)!r} has no .safetensors weights"
            + (
                f" (only {', '.join(pickled)}: pickles, which can run code when read)"
                if pickled
                else ""
            )
            + ". explorer reads safetensors only: where you trust the file, convert it with "
            "`AutoModelForCausalLM.from_pretrained(folder).save_pretrained(folder)`"
        )
    config = AutoConfig.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    arch = (getattr(config, "architectures", None) or [""])[0]
    auto = AutoModelForMaskedLM if FAMILIES.get(arch, ("", False))[1] else AutoModelForCausalLM
    try:
        with _quiet_progress():
            hf_model = auto.from_pretrained(
                path,
                local_files_only=True,
                dtype="auto" if dtype is None else dtype,  # "auto": the saved dtype
                use_safetensors=True,  # never unpickle a .bin file
                trust_remote_code=False,  # never run code shipped with a folder
                **({"device_map": device_map} if device_map is not None else {}),
            )
    except (ValueError, OSError, KeyError) as err:
        raise ValueError(
            f"{str(path)!r} has a Hugging Face config.json ({arch or config.model_type}) but "
            f"transformers cannot open it as a language model: {err}"
        ) from None
    return load_model(
        hf_model,
        tokenizer=load_tokenizer(path),
        name=name or path.name,
        backend=backend,
        allow_mismatch=allow_mismatch,
        **backend_options,
    )


@contextlib.contextmanager
def _quiet_progress() -> Iterator[None]:
    """No "Loading weights" progress bar in the notebook for a model that loads in a blink."""
    # lazy: called while a Hugging Face model loads, when transformers is imported already
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def load_tokenizer(path: Path) -> Any | None:
    """The tokenizer saved in ``path`` (``tokenizer.json`` or the files of a slow one), or None."""
    names = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "vocab.txt")
    if not any((path / n).is_file() for n in names):
        return None
    if (path / "tokenizer.json").is_file() and not (path / "tokenizer_config.json").is_file():
        return _bare_tokenizer(path)
    # lazy: only a folder with tokenizer files gets here (checked above)
    from transformers import AutoTokenizer

    check_folder(path)
    return AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)


def _bare_tokenizer(path: Path) -> Any:
    """A ``tokenizer.json`` without its ``tokenizer_config.json``: read as the file says.

    ``AutoTokenizer`` would pick the model type's tokenizer class, whose default special
    tokens (GPT-NeoX's pad, BERT's ``[UNK]``) are missing from this vocabulary and get
    added after it, with ids the model has no embedding for. The special tokens come from
    the ids ``config.json`` names instead, where the vocabulary holds them."""
    # lazy: only a folder with tokenizer.json and no tokenizer_config.json gets here
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(path / "tokenizer.json"))
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        config = {}
    size = tokenizer.backend_tokenizer.get_vocab_size(with_added_tokens=True)
    for role in ("bos", "eos", "pad", "unk"):
        token_id = config.get(f"{role}_token_id") if isinstance(config, dict) else None
        if isinstance(token_id, list) and token_id:
            token_id = token_id[0]
        if isinstance(token_id, int) and 0 <= token_id < size:
            setattr(tokenizer, f"{role}_token", tokenizer.convert_ids_to_tokens(token_id))
    return tokenizer


def load_model(
    hf_model: nn.Module,
    *,
    tokenizer: Any | None = None,
    name: str | None = None,
    backend: str = "transformer-lens",
    dtype: Any = None,
    allow_mismatch: bool = False,
    **backend_options: Any,
) -> Any:
    """A handle for a ``transformers`` model object: converted when its family is supported,
    else opened as a plain module (with a warning saying what works). With
    ``backend="nnsight"`` the model stays as it is and runs as nnsight traces
    (``explorer.models._nnsight``; options ``remote``, ``device``, ``trace_kwargs``).

    ``dtype`` casts the model (in place, as ``model.to(dtype)``); the converted copy is
    made in the model's dtype and its parity judged there. A conversion whose parity
    fails is refused with the figure, unless ``allow_mismatch=True`` (then it warns)."""
    dtype = _check_dtype(dtype)
    if dtype is not None and next(hf_model.parameters()).dtype != dtype:
        hf_model.to(dtype)
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if backend == "transformer-lens" and backend_options:
        raise ValueError(
            f"{', '.join(sorted(backend_options))} apply to backend='nnsight' only "
            "(the transformer-lens backend runs on the CPU copy it converts)"
        )
    arch = type(hf_model).__name__
    origin = str(getattr(hf_model.config, "name_or_path", "") or "")
    if tokenizer is None and origin and Path(origin).is_dir():
        tokenizer = load_tokenizer(Path(origin))
    name = name or origin or arch
    name = Path(name).name if os.path.sep in str(name) else str(name)
    hf_model.eval()
    if backend == "nnsight":
        device = backend_options.pop("device", None)
        if device is not None:
            hf_model.to(device)
        return _nnsight.load(hf_model, tokenizer=tokenizer, name=name, **backend_options)
    if arch in FAMILIES:
        family, encoder = FAMILIES[arch]
        try:
            cfg = tl_config(hf_model.config, arch, next(hf_model.parameters()).dtype)
            model = converted(hf_model, cfg, arch)
        except Unconvertible as err:
            return _nnsight_instead(hf_model, tokenizer, name, arch, str(err))
        parity = check_parity(hf_model, model, encoder=encoder, warn=False)
        _judge(parity, arch, allow_mismatch)
        prepend_bos = family in PREPEND_BOS
    else:
        try:
            model = tl_converted(hf_model, arch)
        except NOT_CONVERTED as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            model, why = None, f"transformer-lens: {first}"
        else:
            parity = check_parity(hf_model, model, encoder=False, warn=False)
            why = f"transformer-lens's conversion: {parity}"
        if model is None or not parity.ok:
            if _nnsight.paths_of(hf_model) is not None:  # laid out as a family nnsight maps
                return _nnsight_instead(hf_model, tokenizer, name, arch, why)
            return _plain_fallback(hf_model, arch, name, why)
        family, prepend_bos = f"{arch} via transformer-lens", model.cfg.default_prepend_bos
    handle = ModelHandle(model, kind="tokens", name=name, tokenizer=tokenizer, family=family)
    handle.parity = parity
    handle.prepend_bos = bool(prepend_bos)
    handle.config = _tl.config_of(model)
    return handle


def _nnsight_instead(hf_model: nn.Module, tokenizer: Any, name: str, arch: str, why: str) -> Any:
    """A model of a family explorer maps whose config transformer-lens cannot compute: the
    nnsight backend runs it as it is, with its hook sites checked (``site_parity``)."""
    what = f"{arch} cannot be converted to transformer-lens: {why}"
    try:
        handle = _nnsight.load(hf_model, tokenizer=tokenizer, name=name)
    except ImportError:
        raise ValueError(
            f"{what}. The nnsight backend runs such a model as it is, but nnsight is not "
            "installed here: pip install -e '.[scale]', then explorer.load(model, "
            "backend='nnsight')"
        ) from None
    if not handle.parity.ok:
        raise ValueError(
            f"{what}; on the nnsight backend its residual stream does not add up at the hook "
            f"sites ({handle.parity}, tolerance {handle.parity.tolerance:.3g})"
        )
    warnings.warn(
        f"{what}. Opened on the nnsight backend instead: the Hugging Face model runs as it "
        f"is and the hooks are read at its modules ({handle.parity}: the residual stream "
        "adds up at the hook sites). Pass backend='nnsight' to open it there without this "
        "warning",
        stacklevel=4,
    )
    return handle


def _check_dtype(dtype: Any) -> torch.dtype | None:
    """``dtype=`` of a Hugging Face load: a floating torch dtype or its name, or None.

    >>> _check_dtype("bfloat16")
    torch.bfloat16
    """
    names = ("float32", "float16", "bfloat16", "float64")
    if dtype is None or (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        return dtype
    if isinstance(dtype, str) and dtype.removeprefix("torch.") in names:
        return getattr(torch, dtype.removeprefix("torch."))
    raise ValueError(f"dtype={dtype!r}: choose a floating dtype, one of {', '.join(names)}")


def _judge(parity: Parity, arch: str, allow_mismatch: bool) -> None:
    """A conversion that is not the same model is refused, with its figure, unless allowed."""
    if parity.ok:
        return
    figure = (
        f"the converted {arch} differs from the Hugging Face model by up to "
        f"{parity.max_abs_diff:.3g} in logits ({parity.dtype}; the tolerance for "
        f"{parity.dtype} is {parity.tolerance:.3g})"
    )
    if not allow_mismatch:
        raise ValueError(
            f"{figure}: analyses of this handle would describe another model, so explorer "
            "does not hand it back. Open it with backend='nnsight' (the model runs as it "
            "is), or pass allow_mismatch=True to take the converted handle anyway"
        )
    warnings.warn(f"{figure}: analyses may not describe the original model", stacklevel=3)


def _plain_fallback(hf_model: nn.Module, arch: str, name: str, why: str) -> Any:
    supported = ", ".join(f"{f} ({a})" for a, (f, _) in FAMILIES.items())
    why_not = (
        f"{arch} is not converted to transformer-lens: {why} (explorer's families: {supported})."
    )
    try:
        handle = wrap(hf_model, name=name)
    except (ValueError, TypeError, RuntimeError) as err:
        raise ValueError(
            f"{why_not} The plain-module route (explorer.load(nn.Module)) cannot open it "
            f"either: {err}"
        ) from None
    statement = (
        f"{why_not} Opened through the plain-module route, as explorer.load(nn.Module) opens "
        "any module: hook points on the hidden layers found in its module tree, fed float "
        "tensors; token ids, text prompts, attention heads and logit parity are not available"
    )
    warnings.warn(statement, stacklevel=3)
    handle.note = f"plain module: {arch} is not converted to transformer-lens"
    return handle
