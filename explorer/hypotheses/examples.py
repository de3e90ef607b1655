"""The data a hypothesis is judged on: ``Examples`` and the ``Split`` of them it may use.

``Examples`` bundles the inputs (token ids or images) with what the built-in tests read
beside them: answer ``labels`` (and ``alt_labels`` for logit differences), a boolean
``concept`` mask (which examples show the concept a neuron is said to detect), and
``corrupted`` inputs for patching. A ``Split`` names example indices; a hypothesis keeps
the split it was formed on apart from the held-out split it is judged on.

>>> formation, held_out = split_examples(10, held_out=0.4, seed=0)
>>> len(formation), len(held_out), set(formation.indices) & set(held_out.indices)
(6, 4, set())
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch

from explorer._checks import check_fraction, check_positive
from explorer._deprecate import renamed_arguments
from explorer._display import compact_repr


@dataclass(frozen=True)
class Examples:
    """Inputs plus the per-example side information the built-in tests need.

    Every tensor given has the same first dimension (one row per example).
    """

    __repr__ = compact_repr

    inputs: torch.Tensor
    labels: torch.Tensor | None = None
    alt_labels: torch.Tensor | None = None
    concept: torch.Tensor | None = None
    corrupted: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.inputs, torch.Tensor):
            raise TypeError(f"inputs must be a torch.Tensor, got {type(self.inputs).__name__}")
        if self.inputs.ndim == 0 or len(self.inputs) == 0:
            raise ValueError(f"inputs are empty (shape {tuple(self.inputs.shape)})")
        n = len(self.inputs)
        for f in fields(self)[1:]:
            value = getattr(self, f.name)
            if value is None:
                continue
            value = torch.as_tensor(value)
            if f.name == "concept":
                value = _concept_mask(value)
            elif f.name in ("labels", "alt_labels"):
                _check_ids(f.name, value)
            if value.ndim == 0 or len(value) != n:
                raise ValueError(
                    f"{f.name} has {len(value) if value.ndim else 0} rows but inputs have {n}: "
                    "give one row per example"
                )
            object.__setattr__(self, f.name, value)

    def __len__(self) -> int:
        return len(self.inputs)

    def subset(self, split: Split) -> Examples:
        """The examples of ``split`` (its indices must lie inside these examples)."""
        split.check_within(len(self))
        index = torch.tensor(split.indices, dtype=torch.long)
        parts = {f.name: getattr(self, f.name) for f in fields(self)}
        return Examples(**{k: v[index] if v is not None else None for k, v in parts.items()})

    def require(self, name: str, why: str) -> torch.Tensor:
        """The field ``name``, or a ValueError saying which test needed it."""
        value = getattr(self, name)
        if value is None:
            raise ValueError(f"{why} needs Examples({name}=...), which these examples lack")
        return value


def _concept_mask(value: torch.Tensor) -> torch.Tensor:
    """A concept mask given as bool, or as 0/1 numbers; anything else is refused (``.bool()``
    would turn every nonzero value, a probability of 0.3 say, into True)."""
    if value.ndim != 1:
        raise ValueError(
            f"concept must be one flag per example (shape [n]), got shape {tuple(value.shape)}"
        )
    if value.dtype == torch.bool:
        return value
    if value.is_complex() or not bool(((value == 0) | (value == 1)).all()):
        bad = value[~((value == 0) | (value == 1))].flatten()[:3].tolist()
        raise ValueError(
            f"concept must be a bool mask (True where the example shows the concept) or 0/1 "
            f"values, got dtype {value.dtype} with values such as {bad}: threshold scores "
            "yourself, e.g. concept=scores > 0.5"
        )
    return value.bool()


def _check_ids(name: str, value: torch.Tensor) -> None:
    """Labels are class or token ids: integers >= 0 (a float tensor of them is refused too,
    since indexing with it fails later with no name)."""
    if value.dtype == torch.bool or value.dtype.is_floating_point or value.is_complex():
        raise TypeError(
            f"{name} must hold integer class or token ids, got dtype {value.dtype} "
            f"(convert with .long() if they are whole numbers)"
        )
    if value.numel() and int(value.min()) < 0:
        raise ValueError(f"{name} must be ids >= 0, got {int(value.min())}")


def as_examples(data: Examples | torch.Tensor) -> Examples:
    """Accept bare inputs where no side information is needed."""
    if isinstance(data, Examples):
        return data
    if isinstance(data, torch.Tensor):
        return Examples(inputs=data)
    raise TypeError(f"data must be Examples or a tensor of inputs, got {type(data).__name__}")


@dataclass(frozen=True)
class Split:
    """A named, ordered set of example indices.

    >>> print(Split(range(100, 200), name="held-out").describe())
    held-out: 100 examples (indices 100..199)
    """

    __repr__ = compact_repr

    indices: tuple[int, ...]
    name: str = ""

    def __init__(self, indices: Iterable[int] | torch.Tensor, name: str = "") -> None:
        if isinstance(indices, torch.Tensor):
            indices = indices.flatten().tolist()
        values = []
        for i in indices:
            if isinstance(i, bool) or not hasattr(i, "__index__"):
                raise TypeError(f"split indices must be integers, got {i!r}")
            if int(i) < 0:
                raise ValueError(f"split indices must be >= 0, got {int(i)}")
            values.append(int(i))
        if not values:
            label = f"split {name!r}" if name else "a split"
            raise ValueError(f"{label} is empty: give at least one example index")
        if len(set(values)) != len(values):
            raise ValueError(f"split {name!r} repeats example indices; each may appear once")
        object.__setattr__(self, "indices", tuple(values))
        object.__setattr__(self, "name", str(name))

    def __len__(self) -> int:
        return len(self.indices)

    def check_within(self, n: int) -> None:
        biggest = max(self.indices)
        if biggest >= n:
            raise ValueError(
                f"split {self.name!r} names example {biggest} but the data has {n} examples "
                f"(indices 0..{n - 1})"
            )

    def ranges(self) -> list[list[int]]:
        """Run-length form ``[[start, stop), ...]`` of the indices in order (compact JSON)."""
        runs: list[list[int]] = []
        for i in self.indices:
            if runs and runs[-1][1] == i:
                runs[-1][1] = i + 1
            else:
                runs.append([i, i + 1])
        return runs

    def digest(self) -> str:
        return hashlib.sha256(",".join(map(str, self.indices)).encode()).hexdigest()[:12]

    def describe(self) -> str:
        runs = self.ranges()
        if len(runs) <= 3:
            where = ", ".join(f"{a}..{b - 1}" if b - a > 1 else f"{a}" for a, b in runs)
        else:
            lo, hi = min(self.indices), max(self.indices)
            where = f"{lo}..{hi} in {len(runs)} runs, sha {self.digest()}"
        label = f"{self.name}: " if self.name else ""
        noun = "example" if len(self) == 1 else "examples"
        return f"{label}{len(self)} {noun} (indices {where})"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ranges": self.ranges()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Split:
        indices = [i for a, b in data["ranges"] for i in range(int(a), int(b))]
        return cls(indices, name=data.get("name", ""))


def check_disjoint(formation: Split, held_out: Split) -> None:
    """Refuse a held-out split that shares examples with the formation split."""
    shared = sorted(set(formation.indices) & set(held_out.indices))
    if shared:
        shown = ", ".join(map(str, shared[:5])) + (", ..." if len(shared) > 5 else "")
        raise ValueError(
            f"the held-out split overlaps the formation split in {len(shared)} examples "
            f"(indices {shown}): a hypothesis must be judged on examples it was not formed on"
        )


@renamed_arguments(names="split_names")
def split_examples(
    n: int,
    *,
    held_out: float = 0.5,
    seed: int = 0,
    split_names: Sequence[str] = ("formation", "held-out"),
) -> tuple[Split, Split]:
    """A seeded random partition of ``range(n)`` into a formation and a held-out split."""
    check_positive("n", n)
    check_fraction("held_out", held_out)
    n_held = round(n * held_out)
    if not 0 < n_held < n:
        raise ValueError(
            f"held_out={held_out} of {n} examples leaves an empty split: use more examples"
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    first, second = split_names
    return Split(sorted(order[n_held:]), first), Split(sorted(order[:n_held]), second)
