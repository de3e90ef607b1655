"""``load_sae``: an SAE from SAELens's folder format, checked against the model it will read.

SAELens saves an SAE as a folder holding ``cfg.json`` (its architecture, widths and the hook
it reads) and ``sae_weights.safetensors``. Its pretrained releases hold one such folder per
SAE (``blocks.0.hook_resid_pre/``, ...): pass the release folder with ``sae_id=`` naming one,
or the SAE's own folder. A Hugging Face cache snapshot works offline the same way: its files
are links into the repository's ``blobs/``, which count as inside it.

A folder is data, not a program: only JSON and safetensors are read (nothing pickled, no
code), every name taken from ``sae_id`` stays inside the folder (``explorer._inside``), and
an architecture SAELens does not register is refused before anything is built.

With ``model=`` the SAE is checked against the handle: its hook must be one of the model's
hooks and ``d_in`` the width of the activation there (one short probe pass measures it).
Each mismatch is a sentence naming what the SAE says and what the model allows.

>>> import tempfile
>>> from explorer.models import zoo
>>> from explorer.features import SparseAutoencoder
>>> model = zoo.attention_only_transformer(n_layers=1, d_model=8, d_vocab=10, n_ctx=6)
>>> folder = SparseAutoencoder.create("blocks.0.hook_resid_post", d_in=8, d_sae=16).save(
...     tempfile.mkdtemp())
>>> load_sae(folder, model=model)
SparseAutoencoder(topk at blocks.0.hook_resid_post, 8 -> 16 features)
>>> load_sae(folder, model=model, hook="blocks.0.hook_resid_pre").hook
'blocks.0.hook_resid_pre'
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from explorer._inside import OutsideFolderError, inside, is_inside
from explorer.features.sae import SparseAutoencoder
from explorer.features.splice import check_hooks_fit

__all__ = ["activation_width", "check_fits", "load_sae", "sae_folders"]

CFG = "cfg.json"
WEIGHTS = "sae_weights.safetensors"


def sae_folders(folder: str | Path) -> list[str]:
    """The SAE folders (``cfg.json`` + weights) inside a release folder, as ``sae_id``s
    (paths relative to it, ``/``-separated), sorted; links leading outside are skipped."""
    root = Path(folder)
    found = []
    for dirpath, _dirs, files in os.walk(root):
        here = Path(dirpath)
        if CFG in files and WEIGHTS in files and is_inside(here, _root_of(root)):
            found.append(here.relative_to(root).as_posix())
    return sorted(found)


def _root_of(folder: Path) -> Path:
    """What links may point into: the repository folder of a Hugging Face cache snapshot
    (``models--org--name/snapshots/<hash>/...`` links into ``models--org--name/blobs``),
    else the folder itself."""
    for parent in [folder, *folder.parents]:
        if parent.parent.name == "snapshots" and parent.parent.parent.name.startswith("models--"):
            return parent.parent.parent
    return folder


def load_sae(
    folder: str | Path,
    model: Any | None = None,
    *,
    sae_id: str | None = None,
    hook: str | None = None,
    hook_out: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
) -> SparseAutoencoder:
    """The SAE saved in ``folder`` (SAELens's format), checked against ``model`` when given.

    Args:
        folder: an SAE folder, or a release folder holding several (then ``sae_id``).
        model: a handle the SAE will read: its hook names and widths are checked.
        sae_id: which SAE of a release folder (its sub-path, e.g. "blocks.0.hook_resid_pre").
        hook, hook_out: override the hook names the config gives (or supply missing ones).
        device, dtype: where and in which precision to load (the config's by default).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"SAE folder {str(folder)!r} does not exist or is not a folder")
    root = _root_of(folder)
    path = folder
    if sae_id is not None:
        if not isinstance(sae_id, str) or not sae_id.strip("/"):
            raise ValueError(f"sae_id must name a folder inside {str(folder)!r}, not {sae_id!r}")
        path = inside(
            folder,
            *sae_id.strip("/").split("/"),
            what="sae_id",
            owner=f"release folder {str(folder)!r}",
        )
    if not (path / CFG).is_file():
        inner = sae_folders(path)
        if inner:
            shown = inner[:8] + (["..."] if len(inner) > 8 else [])
            raise ValueError(
                f"{str(path)!r} holds {len(inner)} SAEs (a release folder), not one: pass "
                f"sae_id= one of {shown}"
            )
        raise ValueError(
            f"{str(path)!r} is not an SAE folder: SAELens's format has {CFG} and {WEIGHTS} "
            "(SAE.save_model writes them)"
        )
    for name in (CFG, WEIGHTS):
        file = path / name
        if not file.is_file():
            raise ValueError(
                f"SAE folder {str(path)!r} has no {name}: SAELens's format needs {CFG} and {WEIGHTS}"
            )
        if not is_inside(file, root):
            raise OutsideFolderError(
                f"{name} in {str(path)!r} is a symlink that leads outside {str(root)!r} "
                f"(to {os.path.realpath(file)!r}): explorer only reads inside the folder it was given"
            )
    cfg = _read_config(path / CFG)
    sae = _load_saelens(path, cfg, device=device, dtype=dtype)
    name = sae_id or folder.name
    out = SparseAutoencoder.from_saelens(sae, hook=hook, hook_out=hook_out, name=name)
    out.folder = path.resolve()
    if model is not None:
        check_fits(model, out)
    return out


def _read_config(file: Path) -> dict[str, Any]:
    try:
        cfg = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(
            f"{str(file)!r} is not readable JSON ({err}): an SAE config is JSON"
        ) from None
    if not isinstance(cfg, dict):
        raise ValueError(
            f"{str(file)!r} holds {type(cfg).__name__}, not an SAE config (a JSON object)"
        )
    for key in ("d_in", "d_sae"):
        if not isinstance(cfg.get(key), int) or cfg[key] <= 0:
            raise ValueError(
                f"{str(file)!r} gives {key}={cfg.get(key)!r}: an SAE config needs a positive integer {key}"
            )
    return cfg


def _load_saelens(path: Path, cfg: dict[str, Any], *, device: str | None, dtype: str | None) -> Any:
    # lazy: sae_lens (seconds to import) reads a folder only when one is loaded
    import sae_lens

    # lazy: the same import, its config reader for SAELens < 6 folders
    from sae_lens.loading.pretrained_sae_loaders import handle_config_defaulting
    from sae_lens.registry import SAE_CLASS_REGISTRY

    architecture = handle_config_defaulting(dict(cfg)).get("architecture", "standard")
    if architecture not in SAE_CLASS_REGISTRY:
        raise ValueError(
            f"{str(path / CFG)!r} names architecture {architecture!r}, which SAELens "
            f"{sae_lens.__version__} does not know: known are {sorted(SAE_CLASS_REGISTRY)}"
        )
    kwargs: dict[str, Any] = {"device": device or cfg.get("device", "cpu")}
    if kwargs["device"] != "cpu" and not torch.cuda.is_available():
        kwargs["device"] = "cpu"
    if dtype is not None:
        kwargs["dtype"] = dtype
    try:
        return sae_lens.SAE.load_from_disk(path, **kwargs)
    except (RuntimeError, KeyError, ValueError, TypeError) as err:
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"SAE folder {str(path)!r} does not load as a {architecture!r} SAE: {first}"
        ) from None


def activation_width(model: Any, hook: str, *, heads_flattened: bool = False) -> int:
    """The width of ``model``'s activation at ``hook`` (its last axis; heads x d_head for a
    per-head hook when ``heads_flattened``), measured by one short pass."""
    if model.kind == "tokens":
        probe = torch.zeros((1, 2), dtype=torch.long)
    else:
        probe = torch.zeros((1, *(model.input_shape or ())))
    with torch.no_grad():
        _, cache = model.cache_pass(probe, [hook])
    act = cache[hook]
    if heads_flattened and act.ndim >= 4:
        return int(act.shape[-1] * act.shape[-2])
    return int(act.shape[-1])


def check_fits(model: Any, sae: SparseAutoencoder) -> SparseAutoencoder:
    """``sae`` if ``model`` has its hooks and its widths; else a ValueError saying which
    does not fit and what the model has."""
    check_hooks_fit(model, sae)
    width = activation_width(model, sae.hook, heads_flattened=sae.reshapes_heads)
    if width != sae.d_in:
        raise ValueError(
            f"{sae.name} reads d_in={sae.d_in} at {sae.hook}, but {model.name}'s activation "
            f"there has width {width}: an SAE only fits activations of its own width (was it "
            "trained on another model or hook?)"
        )
    if sae.hook_out != sae.hook:
        width = activation_width(model, sae.hook_out)
        if width != sae.d_out:
            raise ValueError(
                f"{sae.name} writes d_out={sae.d_out} at {sae.hook_out}, but {model.name}'s "
                f"activation there has width {width}"
            )
    return sae
