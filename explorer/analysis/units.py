"""Units of a model that analysis can name, select and intervene on.

``Head(1, 4)`` is attention head 4 of layer 1; ``Neuron(0, 37)`` is neuron (or conv
channel) 37 of layer 0's MLP; ``ResidPosition(1, 5)`` is the residual stream entering
layer 1 at position 5. Heads and neurons take an optional ``position`` to act at one token position
only. ``parse_unit("head 1.4")`` / ``"L1H4"`` / ``"neuron 0.37"`` reads the forms people write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from explorer._deprecate import _warn, renamed_arguments
from explorer._display import long_frame
from explorer.analysis.feature_units import Feature, all_features

if TYPE_CHECKING:
    from explorer.models.handle import ModelHandle

__all__ = [
    "Feature",
    "Head",
    "Neuron",
    "ResidPosition",
    "Unit",
    "all_features",
    "all_heads",
    "check_unit",
    "parse_unit",
    "unit_slice",
]


@dataclass(frozen=True, order=True)
class Head:
    layer: int
    head: int
    position: int | None = None

    def hook(self, model: ModelHandle) -> str:
        model.check_head(self.layer, self.head)
        return model.hook_name("z", self.layer)

    def index(self) -> tuple:
        """Index into ``hook_z`` activations ``[batch, pos, head, d_head]``."""
        pos = slice(None) if self.position is None else self.position
        return (slice(None), pos, self.head)

    def __str__(self) -> str:
        at = f"@{self.position}" if self.position is not None else ""
        return f"head {self.layer}.{self.head}{at}"


@dataclass(frozen=True, order=True)
class Neuron:
    layer: int
    neuron: int
    position: int | None = None

    def hook(self, model: ModelHandle) -> str:
        model.check_neuron(self.layer, self.neuron)
        return model.hook_name("post", self.layer)

    def index(self, act_ndim: int = 3) -> tuple:
        """Index into ``hook_post``: ``[batch, pos, d_mlp]`` (tokens), ``[batch, d]`` (MLP)
        or ``[batch, channel, h, w]`` (conv; ``pos`` is unused)."""
        if act_ndim == 3:
            pos = slice(None) if self.position is None else self.position
            return (slice(None), pos, self.neuron)
        return (slice(None), self.neuron)

    def __str__(self) -> str:
        at = f"@{self.position}" if self.position is not None else ""
        return f"neuron {self.layer}.{self.neuron}{at}"


@dataclass(frozen=True, order=True)
class ResidPosition:
    layer: int
    position: int

    def hook(self, model: ModelHandle) -> str:
        if not model.is_transformer:
            raise ValueError(f"{model.name} has no residual stream positions (it takes images)")
        return model.hook_name("resid_pre", self.layer)

    def index(self) -> tuple:
        return (slice(None), self.position)

    def __str__(self) -> str:
        return f"resid {self.layer}@{self.position}"


Unit = Head | Neuron | ResidPosition


def _old_pos(self: Unit) -> int | None:
    _warn(f"{type(self).__name__}.pos", f"{type(self).__name__}.position", stacklevel=3)
    return self.position


for _cls in (Head, Neuron, ResidPosition):  # ``pos`` before issue 24 (docs/api.md glossary)
    _cls.pos = property(_old_pos, doc="Deprecated: ``position``.")  # type: ignore[attr-defined]
    _cls.__init__ = renamed_arguments(pos="position")(_cls.__init__)  # type: ignore[method-assign]

_PATTERNS = [
    (re.compile(r"^\s*(?:head|h)\s*(\d+)\s*[.:]\s*(\d+)(?:\s*@\s*(\d+))?\s*$", re.I), "head"),
    (re.compile(r"^\s*L(\d+)\s*H(\d+)(?:\s*@\s*(\d+))?\s*$", re.I), "head"),
    (re.compile(r"^\s*(?:neuron|n)\s*(\d+)\s*[.:]\s*(\d+)(?:\s*@\s*(\d+))?\s*$", re.I), "neuron"),
    (re.compile(r"^\s*L(\d+)\s*N(\d+)(?:\s*@\s*(\d+))?\s*$", re.I), "neuron"),
    (re.compile(r"^\s*resid\s*(\d+)\s*@\s*(\d+)\s*$", re.I), "resid"),
]


def parse_unit(text: str | Unit) -> Unit:
    """Read a unit from text.

    >>> parse_unit("head 1.4"), parse_unit("L0H2"), parse_unit("neuron 0.37")
    (Head(layer=1, head=4, position=None), Head(layer=0, head=2, position=None), Neuron(layer=0, neuron=37, position=None))
    """
    if isinstance(text, (Head, Neuron, ResidPosition, Feature)):
        return text  # a Feature names its SAE: it has no text form to read back
    if not isinstance(text, str):
        raise TypeError(
            f"a unit is a Head, Neuron, ResidPosition or text, got {type(text).__name__}"
        )
    for pattern, kind in _PATTERNS:
        match = pattern.match(text)
        if match:
            a, b, pos = match.groups() if len(match.groups()) == 3 else (*match.groups(), None)
            pos_value = int(pos) if pos is not None else None
            if kind == "head":
                return Head(int(a), int(b), pos_value)
            if kind == "neuron":
                return Neuron(int(a), int(b), pos_value)
            return ResidPosition(int(a), int(b))
    raise ValueError(
        f"cannot read a unit from {text!r}: write 'head 1.4', 'L1H4', 'neuron 0.37', "
        "'L0N37', 'resid 1@5' (append '@position' to a head or neuron for one position)"
    )


def check_unit(model: ModelHandle, *, unit: Unit | str) -> Unit:
    """Validate that ``model`` has ``unit``; returns it (raises ValueError otherwise)."""
    unit = parse_unit(unit)
    unit.hook(model)
    if isinstance(unit, ResidPosition) or getattr(unit, "position", None) is not None:
        pos = unit.position
        if not model.is_transformer:
            bare = str(unit).split("@")[0]
            raise ValueError(
                f"{unit} names position {pos}, but {model.name} takes images: its units have "
                f"no token positions (write {bare!r}, which covers the whole unit)"
            )
        n_ctx = model.n_ctx
        if n_ctx is not None and not 0 <= pos < n_ctx:  # type: ignore[operator]
            raise ValueError(
                f"position {pos} out of range: {model.name} has positions 0..{n_ctx - 1}"
            )
    return unit


def all_heads(model: ModelHandle, *, layer: int | None = None) -> list[Head]:
    layers = range(model.n_layers) if layer is None else [model.check_layer(layer)]
    if not model.is_transformer:
        raise ValueError(f"{model.name} has no attention heads")
    return [Head(l, h) for l in layers for h in range(model.n_heads or 0)]


def all_neurons(model: ModelHandle, *, layer: int | None = None) -> list[Neuron]:
    """Every neuron of ``layer`` (of every layer when None), in layer then index order."""
    layers = range(model.n_layers) if layer is None else [model.check_layer(layer)]
    if not model.has_mlp:
        raise ValueError(f"{model.name} is attention-only: it has no neurons")
    return [Neuron(l, i) for l in layers for i in range(model.layer_widths[l])]


def unit_slice(act: torch.Tensor, unit: Unit) -> tuple:
    """The index of ``unit`` inside its hook's activation tensor."""
    if isinstance(unit, Neuron):
        return unit.index(act.ndim)
    return unit.index()


def layer_table(grid: torch.Tensor, column: str = "head") -> Any:
    """A ``[layer, index]`` grid as a long pandas DataFrame: ``layer``, ``column``, ``value``
    (``.pivot(index="layer", columns=column, values="value")`` gives the grid back).

    >>> layer_table(torch.tensor([[0.5, 0.25], [1.0, 0.0]]))
       layer  head  value
    0      0     0   0.50
    1      0     1   0.25
    2      1     0   1.00
    3      1     1   0.00
    """
    return long_frame(grid, ("layer", column))


def units_of_type(model: ModelHandle, *, units: object, cls: type, what: str) -> list:
    """``units`` (one unit or text, or a non-empty list) as checked ``cls`` units without
    a position, e.g. ``units_of_type(m, ["head 1.2", Head(0, 3)], Head, "receivers")``."""
    if isinstance(units, (Head, Neuron, ResidPosition, str)):
        units = [units]
    kind = cls.__name__.lower()
    if not isinstance(units, (list, tuple)) or not units:
        raise ValueError(
            f"{what} must be a {cls.__name__}, '{kind} L.I' or a non-empty list of them"
        )
    out = []
    for unit in units:
        parsed = check_unit(model, unit=parse_unit(unit))
        if not isinstance(parsed, cls):
            raise ValueError(f"{what} must be {kind}s, got {parsed}")
        out.append(cls(parsed.layer, getattr(parsed, kind)))
    return out


def neuron_index(model: ModelHandle, *, unit: Neuron | str) -> tuple[int, int]:
    """``(layer, index)`` of one neuron given as a ``Neuron`` or its text, checked.

    >>> from explorer.models import zoo
    >>> neuron_index(zoo.mnist_mlp(hidden=(8,)), unit="neuron 0.3")
    (0, 3)
    """
    found = units_of_type(model, units=unit, cls=Neuron, what="unit")
    if len(found) != 1:
        raise ValueError(f"unit must be one neuron, got {len(found)}: {unit!r}")
    return found[0].layer, found[0].neuron
