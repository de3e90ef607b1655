"""Fourier analysis of modular arithmetic (Nanda et al. 2023, "Progress measures for grokking").

A network that has grokked ``a + b mod p`` represents each number by a few waves
``cos(2πka/p)``, ``sin(2πka/p)`` (its *key frequencies* k) and reads the answer off
``cos(2πk(a + b - c)/p)``. This module measures that:

- ``fourier_basis(p)``: the orthonormal real Fourier basis of functions on ``Z_p``.
- ``fourier_spectrum(W_E)``: how much of the embedding's norm lies on each frequency.
- ``key_frequencies(spectrum)``: the smallest set of frequencies carrying a share of it.
- ``restricted_loss`` / ``excluded_loss``: the loss of the logits kept to (or stripped of)
  the key-frequency directions ``cos(2πk(a+b)/p)``, ``sin(2πk(a+b)/p)`` over the input grid.

Logits over all pairs are ``[p * p, p]`` in the order of ``explorer.data.modular_arithmetic``
(row ``a * p + b``). Everything here is tensors in, frozen dataclasses or floats out.

>>> import torch
>>> basis = fourier_basis(5)
>>> basis.labels
('const', 'cos 1', 'sin 1', 'cos 2', 'sin 2')
>>> torch.allclose(basis.matrix @ basis.matrix.T, torch.eye(5), atol=1e-6)
True
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int

from explorer._checks import check_finite, check_tensor
from explorer._deprecate import renamed_arguments
from explorer._display import MAX_ROWS, Shown, long_frame, num, pandas, strongest

__all__ = [
    "FourierBasis",
    "FourierSpectrum",
    "KeyFrequencies",
    "excluded_loss",
    "fourier_basis",
    "fourier_spectrum",
    "key_frequencies",
    "restricted_logits",
    "restricted_loss",
]


@dataclass(frozen=True, repr=False)
class FourierBasis(Shown):
    """Orthonormal real Fourier basis of ``Z_p``: row ``i`` is a unit vector over ``0..p-1``.

    Rows are the constant, then ``cos k``, ``sin k`` for ``k = 1..(p-1)//2`` (and the
    alternating ``cos p/2`` when p is even). ``frequencies[i]`` is the k of row i.
    """

    p: int
    matrix: Float[torch.Tensor, "basis p"]
    labels: tuple[str, ...]
    frequencies: Int[torch.Tensor, " basis"]

    @property
    def n_frequencies(self) -> int:
        """Number of non-constant frequencies, ``p // 2``."""
        return self.p // 2

    def to_dataframe(self) -> Any:
        """One row per (basis row, input ``x``): the row's ``label``, its ``frequency`` and
        the basis ``value``."""
        frame = long_frame(self.matrix.double(), ("row", "x"))
        frame.insert(1, "label", [self.labels[r] for r in frame["row"]])
        frame.insert(2, "frequency", [int(self.frequencies[r]) for r in frame["row"]])
        return frame

    def _summary(self) -> str:
        shown = ", ".join(self.labels[:7]) + (", ..." if len(self.labels) > 7 else "")
        return f"p={self.p}, {len(self.labels)} rows: {shown}"

    def _table(self) -> tuple:
        rows = [(label, int(k)) for label, k in zip(self.labels[:MAX_ROWS], self.frequencies)]
        note = f"{len(rows)} of {len(self.labels)} rows of the [{self.p}, {self.p}] basis"
        return f"Fourier basis of Z_{self.p}", ("row", "frequency"), rows, note


def fourier_basis(p: int) -> FourierBasis:
    """The real Fourier basis of functions on ``Z_p`` (see ``FourierBasis``).

    >>> fourier_basis(4).labels
    ('const', 'cos 1', 'sin 1', 'cos 2')
    """
    if isinstance(p, bool) or not isinstance(p, int) or p < 2:
        raise ValueError(f"p must be an integer >= 2, got {p!r}")
    matrix, labels, freqs = _basis(p)
    return FourierBasis(p, matrix.clone(), labels, freqs.clone())


@functools.lru_cache(maxsize=16)
def _basis(p: int) -> tuple[torch.Tensor, tuple[str, ...], torch.Tensor]:
    # computed once per p (a replay over many checkpoints asks again at each one); callers
    # get copies, so the cached tensors never change
    x = torch.arange(p, dtype=torch.float64)
    rows, labels, freqs = [torch.ones(p, dtype=torch.float64)], ["const"], [0]
    for k in range(1, p // 2 + 1):
        angle = 2 * math.pi * k * x / p
        rows.append(torch.cos(angle))
        labels.append(f"cos {k}")
        freqs.append(k)
        if 2 * k != p:  # at the Nyquist frequency of an even p the sine vanishes
            rows.append(torch.sin(angle))
            labels.append(f"sin {k}")
            freqs.append(k)
    matrix = torch.stack(rows)
    matrix = matrix / matrix.norm(dim=1, keepdim=True)
    return matrix.float(), tuple(labels), torch.tensor(freqs)


@dataclass(frozen=True, repr=False)
class FourierSpectrum(Shown):
    """Norm of a matrix ``[p, d]`` (e.g. the number embeddings) along each Fourier direction.

    ``basis_norms[i]`` is the L2 norm (over ``d``) of the component on basis row ``i``;
    ``frequency_norms[k]`` combines ``cos k`` and ``sin k`` (index 0 is the constant).
    By Parseval, ``basis_norms.pow(2).sum()`` is the squared Frobenius norm of the matrix.
    """

    p: int
    basis_norms: Float[torch.Tensor, " basis"]
    frequency_norms: Float[torch.Tensor, " freq"]
    labels: tuple[str, ...]

    @property
    def total(self) -> float:
        """Squared Frobenius norm of the matrix (the sum of all squared components)."""
        return float(self.basis_norms.pow(2).sum())

    def fraction(self, frequencies: Iterable[int]) -> float:
        """Share of the squared norm carried by ``frequencies`` (each in ``1..p//2``)."""
        ks = _check_frequencies(self.p, frequencies)
        total = self.total
        if total == 0:
            return 0.0
        return float(self.frequency_norms[list(ks)].pow(2).sum()) / total

    def to_dataframe(self) -> Any:
        """One row per frequency ``0..p//2`` (0 is the constant): ``norm`` and ``share`` of
        the squared norm."""
        norms = self.frequency_norms.detach().double()
        total = norms.pow(2).sum()
        return (
            pandas()
            .DataFrame(
                {
                    "norm": norms.numpy(),
                    "share": (norms.pow(2) / total if total > 0 else norms * 0).numpy(),
                },
            )
            .rename_axis("frequency")
            .reset_index()
        )

    def _summary(self) -> str:
        return f"p={self.p}, {len(self.frequency_norms) - 1} frequencies, squared norm {num(self.total)}"

    def _top(self) -> list[str]:
        return [
            f"frequency {k} {float(self.frequency_norms[k]):.3g}"
            for k in strongest(self.frequency_norms, 3, by_abs=False)
        ]

    def _table(self) -> tuple:
        frame_total = self.total or 1.0
        rows = [
            (
                f"frequency {k}",
                float(self.frequency_norms[k]),
                float(self.frequency_norms[k]) ** 2 / frame_total,
            )
            for k in strongest(self.frequency_norms, MAX_ROWS, by_abs=False)
        ]
        note = f"{len(rows)} of {len(self.frequency_norms)} frequencies (0 = constant), strongest first"
        return f"Fourier spectrum (p={self.p})", ("frequency", "norm", "share"), rows, note


def fourier_spectrum(matrix: Float[torch.Tensor, "p d"]) -> FourierSpectrum:
    """The Fourier spectrum of ``matrix`` along its first axis (numbers ``0..p-1``).

    For the embedding of a modular-arithmetic transformer pass ``W_E[:p]`` (drop the "="
    token): ``fourier_spectrum(model.weight("embed")[:p])``.
    """
    matrix = check_tensor("matrix", matrix, ndim=(1, 2), integer=False)
    check_finite("matrix", matrix)
    if matrix.ndim == 1:
        matrix = matrix[:, None]
    p = matrix.shape[0]
    basis = fourier_basis(p)
    coeffs = basis.matrix @ matrix.detach().float().cpu()
    basis_norms = coeffs.norm(dim=1)
    squared = torch.zeros(p // 2 + 1).index_add_(0, basis.frequencies, basis_norms.pow(2))
    return FourierSpectrum(p, basis_norms, squared.sqrt(), basis.labels)


@dataclass(frozen=True, repr=False)
class KeyFrequencies(Shown):
    """The frequencies that carry most of a spectrum, strongest first."""

    frequencies: tuple[int, ...]
    fraction: float  # share of the squared norm they carry
    norms: tuple[float, ...]  # frequency norm of each, same order

    def __len__(self) -> int:
        return len(self.frequencies)

    def to_dataframe(self) -> Any:
        """One row per key ``frequency``, strongest first: its ``norm``."""
        return pandas().DataFrame({"frequency": list(self.frequencies), "norm": list(self.norms)})

    def _summary(self) -> str:
        return f"{len(self.frequencies)} frequencies carry {self.fraction:.1%} of the squared norm"

    def _top(self) -> list[str]:
        return [f"{k} {num(v)}" for k, v in zip(self.frequencies[:5], self.norms)]

    def _table(self) -> tuple:
        rows = [(f"frequency {k}", v) for k, v in zip(self.frequencies[:MAX_ROWS], self.norms)]
        return "Key frequencies", ("frequency", "norm"), rows, self._summary()


@renamed_arguments(top="n")
def key_frequencies(
    spectrum: FourierSpectrum, *, mass: float = 0.8, n: int | None = None
) -> KeyFrequencies:
    """The smallest set of frequencies carrying at least ``mass`` of the squared norm.

    With ``n`` the ``n`` strongest frequencies instead (``mass`` is then ignored).

    The constant term is never a key frequency, but it **counts in the total**: the share
    of frequencies ``K`` is ``sum_{k in K} |c_k|^2 / (|c_0|^2 + sum_{k >= 1} |c_k|^2)``,
    with ``c_0`` the component along the constant. A matrix whose rows share a large mean
    needs more frequencies to reach ``mass`` (or never reaches it: then every frequency is
    returned, and ``fraction`` says how far short it fell). Pass a matrix centred over its
    first axis (``W - W.mean(0)``) to measure the share of the non-constant norm instead.

    >>> import torch
    >>> basis = fourier_basis(11)
    >>> W = torch.stack([basis.matrix[5], 0.5 * basis.matrix[8]], dim=1)  # cos 3, sin 4
    >>> key_frequencies(fourier_spectrum(W), mass=0.99).frequencies
    (3, 4)
    >>> shifted = W + basis.matrix[0][:, None]  # add a constant of norm 1 to each column
    >>> round(key_frequencies(fourier_spectrum(shifted), n=2).fraction, 3)  # 1.25 / 3.25
    0.385
    """
    norms = spectrum.frequency_norms[1:]
    order = torch.argsort(norms, descending=True, stable=True)
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(norms):
            raise ValueError(f"n must be an integer in 1..{len(norms)}, got {n!r}")
        chosen = order[:n]
    else:
        if not 0 < mass <= 1:
            raise ValueError(f"mass must be in (0, 1], got {mass!r}")
        total = spectrum.total
        shares = norms[order].pow(2).cumsum(0) / (total if total > 0 else 1.0)
        reached = torch.nonzero(shares >= mass - 1e-6)
        n = int(reached[0]) + 1 if len(reached) else len(norms)
        chosen = order[:n]
    freqs = tuple(int(k) + 1 for k in chosen)
    return KeyFrequencies(
        freqs, spectrum.fraction(freqs), tuple(float(norms[k - 1]) for k in freqs)
    )


def sum_directions(p: int, frequencies: Iterable[int]) -> Float[torch.Tensor, "dirs pairs"]:
    """Unit vectors over the input grid (row ``a * p + b``): ``cos(2πk(a+b)/p)``, ``sin(...)``.

    Two per frequency (one for ``k = p/2``), mutually orthogonal, so projecting onto them
    is a sum of dot products.
    """
    return _directions(p, _check_frequencies(p, frequencies)).clone()


@functools.lru_cache(maxsize=16)
def _directions(p: int, ks: tuple[int, ...]) -> torch.Tensor:
    # once per (p, frequencies): a replay asks for the same key at every checkpoint
    a = torch.arange(p, dtype=torch.float64).repeat_interleave(p)
    b = torch.arange(p, dtype=torch.float64).repeat(p)
    rows = []
    for k in ks:
        angle = 2 * math.pi * k * (a + b) / p
        rows.append(torch.cos(angle))
        if 2 * k != p:
            rows.append(torch.sin(angle))
    if not rows:
        return torch.zeros(0, p * p)
    directions = torch.stack(rows)
    return (directions / directions.norm(dim=1, keepdim=True)).float()


def _key_component(
    logits: Float[torch.Tensor, "pairs c"], frequencies: Iterable[int]
) -> Float[torch.Tensor, "pairs c"]:
    p = _grid_size(logits)
    directions = _directions(p, _check_frequencies(p, frequencies)).to(logits.dtype)  # read only
    return directions.T @ (directions @ logits)


def restricted_logits(
    logits: Float[torch.Tensor, "pairs c"], frequencies: Iterable[int]
) -> Float[torch.Tensor, "pairs c"]:
    """Logits kept to the key-frequency directions over the grid, plus each output's mean.

    The mean over inputs (a per-output bias) is kept so that only input-dependent
    structure is filtered, as in Nanda et al.'s restricted loss.
    """
    logits = _check_logits(logits)
    return logits.mean(0, keepdim=True) + _key_component(logits, frequencies)


@renamed_arguments(index="pairs")
def restricted_loss(
    logits: Float[torch.Tensor, "pairs c"],
    labels: Int[torch.Tensor, " pairs"],
    frequencies: Iterable[int],
    pairs: Int[torch.Tensor, " n"] | None = None,
) -> float:
    """Cross-entropy of ``restricted_logits`` (on all pairs, or the rows listed in ``pairs``).

    Low restricted loss means the key frequencies alone already compute the answer.
    """
    kept = restricted_logits(logits, frequencies)
    return _cross_entropy(kept, labels, pairs)


@renamed_arguments(index="pairs")
def excluded_loss(
    logits: Float[torch.Tensor, "pairs c"],
    labels: Int[torch.Tensor, " pairs"],
    frequencies: Iterable[int],
    pairs: Int[torch.Tensor, " n"] | None = None,
) -> float:
    """Cross-entropy after removing the key-frequency directions (pass the train rows as
    ``pairs``).

    It rises while the generalising circuit forms: the model comes to rely on it even on
    the training data it had memorized.
    """
    logits = _check_logits(logits)
    return _cross_entropy(logits - _key_component(logits, frequencies), labels, pairs)


# ---------------------------------------------------------------------------- checks
def _check_frequencies(p: int, frequencies: Iterable[int]) -> tuple[int, ...]:
    ks = tuple(int(k) for k in frequencies)
    bad = [k for k in ks if not 1 <= k <= p // 2]
    if bad:
        raise ValueError(f"frequencies {bad} out of range: valid frequencies are 1..{p // 2}")
    if len(set(ks)) != len(ks):
        raise ValueError(f"frequencies repeat: {ks}")
    return ks


def _grid_size(logits: torch.Tensor) -> int:
    p = math.isqrt(logits.shape[0])
    if p * p != logits.shape[0]:
        raise ValueError(
            f"logits must cover every pair (a, b): {logits.shape[0]} rows is not a square p * p"
        )
    return p


def _check_logits(logits: torch.Tensor) -> torch.Tensor:
    logits = check_tensor("logits", logits, ndim=2, integer=False)
    check_finite("logits", logits)
    _grid_size(logits)
    return logits.detach().float()


def _cross_entropy(logits: torch.Tensor, labels: torch.Tensor, index: torch.Tensor | None) -> float:
    labels = check_tensor("labels", torch.as_tensor(labels), ndim=1, integer=True)
    if labels.shape[0] != logits.shape[0]:
        raise ValueError(f"labels has {labels.shape[0]} rows but logits has {logits.shape[0]}")
    if index is not None:
        index = check_tensor("index", torch.as_tensor(index), ndim=1, integer=True)
        logits, labels = logits[index], labels[index]
    return float(F.cross_entropy(logits.double(), labels))
