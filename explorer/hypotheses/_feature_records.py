"""How a stored hypothesis names the SAE its features belong to, so it can be re-run.

A ``Feature`` is feature ``i`` of a ``SparseAutoencoder`` held in memory; its text
(``feature 3 of topk@blocks.1.hook_resid_pre``) does not say which weights. A hypothesis
about features is stored with its units as ``"F3"`` (``"F3@5"`` at one position) and an
``sae`` record: the SAE's folder relative to a root (``"project"``, the working directory
the store is used from, or ``"explorer"``, the package, for the shipped SAE) and its
``fingerprint()``. Reading the record back opens the folder with ``load_sae`` and refuses,
with a sentence, an SAE that is missing or whose weights changed. The record is data: the
folder is read only inside its root (``explorer._inside``) and no code is loaded from it.

>>> from explorer.features import SparseAutoencoder
>>> sae = SparseAutoencoder.create("blocks.0.hook_resid_post", d_in=8, d_sae=16, k=2)
>>> fields = unit_fields([Feature(sae, 3)])  # made in memory: no folder to name
>>> fields["units"], fields["sae"] is None
(['feature 3 of topk@blocks.0.hook_resid_post'], True)
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from explorer._inside import inside, is_inside, plain_name
from explorer.analysis.feature_units import Feature
from explorer.analysis.units import Unit, parse_unit
from explorer.features import SparseAutoencoder, load_sae

__all__ = ["load_recorded_sae", "read_units", "sae_record", "unit_fields"]

_FEATURE_TEXT = re.compile(r"^F(\d+)(?:@(\d+))?$")
_LOADED: dict[tuple[str, int, str], SparseAutoencoder] = {}  # (folder, mtime, fingerprint)


def _roots() -> dict[str, Path]:
    # the package first: the shipped SAE is named the same from any working directory
    return {"explorer": Path(__file__).resolve().parents[1], "project": Path.cwd()}


def sae_record(sae: SparseAutoencoder) -> dict[str, Any] | None:
    """``{"root", "folder", "fingerprint", "name"}`` naming ``sae`` as data, or None when it
    was not loaded from a folder inside the project (or the package)."""
    folder = getattr(sae, "folder", None)
    if folder is None:
        return None
    for root_name, root in _roots().items():
        if is_inside(folder, root) and Path(os.path.realpath(folder)) != Path(
            os.path.realpath(root)
        ):
            rel = Path(os.path.realpath(folder)).relative_to(os.path.realpath(root))
            return {"root": root_name, "folder": rel.as_posix(), "fingerprint": sae.fingerprint(),
                    "name": sae.name}  # fmt: skip
    return None


def unit_fields(units: Sequence[Unit]) -> dict[str, Any]:
    """The ``units`` (and, for features, ``sae``) fields of a hypothesis record."""
    features = [u for u in units if isinstance(u, Feature)]
    if not features:
        return {"units": [str(u) for u in units]}
    saes = {id(u.sae): u.sae for u in features}
    record = sae_record(features[0].sae) if len(saes) == 1 else None
    if record is None or len(features) != len(units):  # not nameable: text, as before
        return {"units": [str(u) for u in units], "sae": None}
    texts = [f"F{u.feature}" + ("" if u.position is None else f"@{u.position}") for u in features]
    return {"units": texts, "sae": record}


def load_recorded_sae(record: Any) -> SparseAutoencoder:
    """The SAE an ``sae`` record names, opened with ``load_sae`` and checked against its
    fingerprint (a ValueError saying why when it is missing, outside its root or changed)."""
    if not isinstance(record, dict) or not {"root", "folder", "fingerprint"} <= set(record):
        raise ValueError(f"an sae record needs root, folder and fingerprint, got {record!r}")
    roots = _roots()
    if record["root"] not in roots:
        raise ValueError(f"sae record root {record['root']!r} is not one of {sorted(roots)}")
    parts = str(record["folder"]).split("/")
    if not all(plain_name(p) for p in parts):
        raise ValueError(
            f"sae record folder {record['folder']!r} is not a relative path of plain names "
            f"inside the {record['root']} folder: refused"
        )
    root = roots[record["root"]]
    path = inside(root, *parts, what="SAE folder", owner=f"{record['root']} folder {str(root)!r}")
    name = record.get("name", record["folder"])
    if not path.is_dir():
        raise ValueError(
            f"the SAE {name!r} this hypothesis is about is missing: no folder "
            f"{record['folder']!r} in the {record['root']} folder {str(root)!r} (put it back, "
            "or run from the folder the hypothesis was saved in)"
        )
    weights = path / "sae_weights.safetensors"
    key = (str(path), weights.stat().st_mtime_ns if weights.exists() else 0, record["fingerprint"])
    if key not in _LOADED:
        sae = load_sae(path, dtype="float32")
        if sae.fingerprint() != record["fingerprint"]:
            raise ValueError(
                f"the SAE in {record['folder']!r} is not the one this hypothesis was saved with "
                f"(fingerprint {sae.fingerprint()}, recorded {record['fingerprint']}): its "
                "weights changed, so its features are other features; refusing to re-run it"
            )
        _LOADED[key] = sae
    return _LOADED[key]


def read_units(texts: Sequence[Any], record: Any = None) -> tuple[Unit, ...]:
    """Units from their stored text; ``"F3"`` needs the ``sae`` record it was saved with."""
    if record is None:
        return tuple(parse_unit(t) for t in texts)
    sae = load_recorded_sae(record)
    units = []
    for text in texts:
        match = _FEATURE_TEXT.match(str(text))
        if match is None:
            raise ValueError(f"a feature hypothesis's unit must read 'F3' or 'F3@5', got {text!r}")
        pos = None if match.group(2) is None else int(match.group(2))
        units.append(Feature(sae, int(match.group(1)), pos))
    return tuple(units)
