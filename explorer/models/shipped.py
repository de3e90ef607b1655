"""Small trained checkpoints that ship inside the package, so notebooks start offline.

Each lives in ``explorer/zoo_weights/<name>/`` in explorer's own checkpoint format
(``config.json`` + ``model.safetensors``, see ``checkpoint``), well under 1 MB. Open one with
``explorer.load("shipped:<name>")`` or ``load_shipped(name)``; ``shipped_names()`` lists them.
Each ``config.json`` carries under ``meta`` the recipe that rebuilds it
(``python -m explorer.studies.shipped <name>``), the training figures and a fingerprint of
an early training step that the tests reproduce.

>>> "quickstart-induction" in shipped_names()
True
>>> load_shipped("quickstart-induction").n_layers
2
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from explorer.models import checkpoint
from explorer.models.handle import ModelHandle

PREFIX = "shipped:"
ROOT = Path(__file__).resolve().parents[1] / "zoo_weights"


def shipped_names() -> list[str]:
    """Names of the checkpoints shipped with this copy of explorer."""
    if not ROOT.is_dir():
        return []
    return sorted(p.name for p in ROOT.iterdir() if checkpoint.is_checkpoint(p))


def shipped_path(name: str) -> Path:
    """The folder of shipped checkpoint ``name`` (a clear error naming the choices)."""
    if name.startswith(PREFIX):
        name = name[len(PREFIX) :]
    names = shipped_names()
    if name not in names:
        raise ValueError(
            f"no shipped checkpoint called {name!r}: choose one of {', '.join(names) or 'none'}"
        )
    return ROOT / name


def load_shipped(name: str) -> ModelHandle:
    """The shipped trained model ``name``, in eval mode, on the CPU; offline."""
    path = shipped_path(name)
    model = checkpoint.load_checkpoint(path)
    model.name = path.name
    return model


def shipped_meta(name: str) -> dict[str, Any]:
    """What ``config.json`` says about how ``name`` was trained (recipe, steps, figures)."""
    return dict(checkpoint.read_header(shipped_path(name)).get("meta", {}))
