"""Circuits read off the weights: composition between heads and the OV copying score.

Elhage et al. (2021) write each head as two low-rank ``d_model x d_model`` matrices
(transformer-lens row-vector convention, ``x @ W``):

- ``W_OV = W_V @ W_O``: what the head writes given what it attends to;
- ``W_QK = W_Q @ W_K.T``: the bilinear form scoring a query against a key.

A later head B *composes* with an earlier head A when B reads what A writes. The score is
``||W_A W_B||_F / (||W_A||_F ||W_B||_F)`` with ``W_A = W_OV^A`` and ``W_B`` one of

- ``W_QK^B`` (**Q**-composition: A's output feeds B's queries),
- ``W_QK^B.T`` (**K**-composition: A's output feeds B's keys; the induction mechanism),
- ``W_OV^B`` (**V**-composition: A's output feeds B's values).

Random matrices of the same shapes still score above zero, so scores are read against
``random_composition_baseline`` (about ``1/sqrt(d_model)``, whatever ``d_head``).

With LayerNorm the weights are folded the way transformer-lens's ``fold_ln`` and
``center_writing_weights`` do: a reading matrix is scaled row-wise by its LayerNorm
weight, and reading and writing matrices are centred (LayerNorm removes the mean over
``d_model``, so the all-ones direction carries nothing). LayerNorm's division by the norm is a
per-token scalar and leaves these normalised scores unchanged.

The **copying score** of a head is read from its full OV circuit ``W_E W_OV W_U``
(``[d_vocab, d_vocab]``: what the head pushes up in the logits for each token it attends
to): Elhage's eigenvalue score ``sum(lambda) / sum(|lambda|)`` (1 = pure copying, about 0
for random) and ARENA's diagonal score, the fraction of tokens whose own logit is the
largest of their row (chance ``1 / n_tokens``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float

from explorer._checks import check_choice, check_positive
from explorer.analysis._shown import CompositionShown, CopyingShown
from explorer.analysis.units import Head, parse_unit
from explorer.models.handle import ModelHandle

__all__ = [
    "COMPOSITIONS",
    "CompositionScores",
    "CopyingScores",
    "composition_scores",
    "ov_copying_scores",
]

COMPOSITIONS = ("q", "k", "v")


@dataclass(frozen=True, repr=False)
class CompositionScores(CompositionShown):
    """``scores[composition, layer_a, head_a, layer_b, head_b]``: how much head B reads head A.

    Only pairs with ``layer_a < layer_b`` compose; other entries are NaN.
    ``baseline`` and ``baseline_std`` are the mean and spread of the score of random
    matrices of the same shapes.
    """

    scores: Float[torch.Tensor, "composition layer_a head_a layer_b head_b"]
    compositions: tuple[str, ...]
    baseline: float
    baseline_std: float

    def get(self, composition: str) -> Float[torch.Tensor, "layer_a head_a layer_b head_b"]:
        check_choice("composition", composition, self.compositions)
        return self.scores[self.compositions.index(composition)]

    def between(
        self, composition: str, layer_a: int, layer_b: int
    ) -> Float[torch.Tensor, "head_a head_b"]:
        """The ``[head_a, head_b]`` grid of scores from ``layer_a`` into ``layer_b``."""
        n_layers = self.scores.shape[1]
        if not 0 <= layer_a < layer_b < n_layers:
            raise ValueError(
                f"need 0 <= layer_a < layer_b <= {n_layers - 1}, got {layer_a} and {layer_b}"
            )
        return self.get(composition)[layer_a, :, layer_b, :]

    def score(self, composition: str, a: Head | str, b: Head | str) -> float:
        """The score of the pair ``a -> b``, e.g. ``score("k", "head 0.1", "head 1.2")``."""
        a, b = parse_unit(a), parse_unit(b)
        if not isinstance(a, Head) or not isinstance(b, Head):
            raise TypeError(f"composition is between heads, got {a} and {b}")
        return float(self.between(composition, a.layer, b.layer)[a.head, b.head])

    def top(self, composition: str, n: int = 3) -> list[tuple[Head, Head, float]]:
        """The ``n`` highest-scoring pairs as ``(head A, head B, score)``."""
        check_positive("n", n)
        grid = self.get(composition)
        flat = torch.nan_to_num(grid.flatten(), nan=-math.inf)
        n_valid = int(torch.isfinite(flat).sum())
        values, index = flat.topk(min(n, n_valid))
        n_layers, n_heads = grid.shape[0], grid.shape[1]
        out = []
        for value, i in zip(values.tolist(), index.tolist()):
            la, ha, lb, hb = _unravel(i, (n_layers, n_heads, n_layers, n_heads))
            out.append((Head(la, ha), Head(lb, hb), value))
        return out

    def above_baseline(
        self, composition: str, n_std: float = 3.0
    ) -> list[tuple[Head, Head, float]]:
        """Pairs scoring more than ``n_std`` baseline spreads above the random mean, best first."""
        threshold = self.baseline + n_std * self.baseline_std
        return [t for t in self.top(composition, self.scores[0].numel()) if t[2] > threshold]


@dataclass(frozen=True, repr=False)
class CopyingScores(CopyingShown):
    """Per head ``[layer, head]``: how much its full OV circuit copies tokens."""

    eigenvalue: Float[torch.Tensor, "layer head"]
    diagonal_top1: Float[torch.Tensor, "layer head"]
    n_tokens: int

    @property
    def chance_top1(self) -> float:
        """``diagonal_top1`` of a circuit that ignores which token it attends to."""
        return 1.0 / self.n_tokens


def _unravel(index: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    out = []
    for size in reversed(shape):
        out.append(index % size)
        index //= size
    return tuple(reversed(out))


def composition_score(
    left: Float[torch.Tensor, "... d_in d_mid"], right: Float[torch.Tensor, "... d_mid d_out"]
) -> Float[torch.Tensor, "..."]:
    """``||left @ right||_F / (||left||_F ||right||_F)``, broadcast over leading dims.

    Lies in ``[0, 1]``; it is 1 when ``left``'s output space is exactly what ``right``
    reads (e.g. both the same rank-1 matrix) and 0 when they are orthogonal or either is
    all zeros.

    >>> import torch
    >>> u = torch.tensor([[1.0, 0.0]]).T
    >>> v = torch.tensor([[0.0, 1.0]]).T
    >>> float(composition_score(u @ u.T, u @ u.T)), float(composition_score(u @ u.T, v @ v.T))
    (1.0, 0.0)
    """
    if left.shape[-1] != right.shape[-2]:
        raise ValueError(
            f"cannot compose {list(left.shape)} with {list(right.shape)}: "
            f"inner sizes {left.shape[-1]} and {right.shape[-2]} differ"
        )
    left, right = left.double(), right.double()
    norms = torch.linalg.matrix_norm(left) * torch.linalg.matrix_norm(right)
    product = torch.linalg.matrix_norm(left @ right)
    # a head with all-zero weights (e.g. pruned) reads and writes nothing: it composes with
    # nothing, so it scores 0 rather than 0/0
    return torch.where(norms > 0, product / norms.clamp(min=1e-300), 0.0).float()


def random_composition_baseline(
    d_model: int, d_head: int, *, n_samples: int = 200, seed: int = 0
) -> tuple[float, float]:
    """Mean and standard deviation of ``composition_score`` for random heads of these sizes.

    Each matrix is ``W1 @ W2`` with Gaussian ``W1: [d_model, d_head]``,
    ``W2: [d_head, d_model]``, the shape of a head's ``W_OV`` or ``W_QK``.

    >>> mean, std = random_composition_baseline(64, 16)
    >>> 0.5 / math.sqrt(64) < mean < 2 / math.sqrt(64)
    True
    """
    check_positive("d_model", d_model)
    check_positive("d_head", d_head)
    check_positive("n_samples", n_samples)
    g = torch.Generator().manual_seed(seed)

    def random_heads() -> torch.Tensor:
        a = torch.randn(n_samples, d_model, d_head, generator=g, dtype=torch.float64)
        b = torch.randn(n_samples, d_head, d_model, generator=g, dtype=torch.float64)
        return a @ b

    scores = composition_score(random_heads(), random_heads()).double()
    std = float(scores.std()) if n_samples > 1 else 0.0
    return float(scores.mean()), std


def _transformer(model: ModelHandle) -> ModelHandle:
    if not model.is_transformer:
        raise ValueError(f"{model.name} takes {model.kind}: it has no attention heads")
    return model


def _has_layernorm(model: ModelHandle) -> bool:
    return model.normalization in ("LN", "LNPre")


def _centre(w: torch.Tensor, dim: int) -> torch.Tensor:
    """Remove the component along the all-ones direction of ``d_model`` (axis ``dim``)."""
    return w - w.mean(dim, keepdim=True)


def _ln_weight(norm: tuple, d_model: int) -> torch.Tensor:
    """The weight of a norm (``ModelHandle.final_norm`` / ``block_norm``); ones if it has none."""
    w = norm[1]
    return w if w is not None else torch.ones(d_model)


@torch.no_grad()
def head_circuits(
    model: ModelHandle, *, fold_layernorm: bool = True
) -> tuple[
    Float[torch.Tensor, "layer head d_model d_model"],
    Float[torch.Tensor, "layer head d_model d_model"],
]:
    """Every head's ``(W_OV, W_QK)`` as ``[layer, head, d_model, d_model]`` (LayerNorm folded).

    >>> from explorer.models import zoo
    >>> ov, qk = head_circuits(zoo.attention_only_transformer(n_layers=2, d_model=32))
    >>> tuple(ov.shape), tuple(qk.shape)
    ((2, 4, 32, 32), (2, 4, 32, 32))
    """
    _transformer(model)
    d_model = int(model.d_model or 0)
    ovs, qks = [], []
    for layer in range(model.n_layers):
        w_q, w_k, w_v, w_o = (
            model.weight(name, layer).double() for name in ("query", "key", "value", "attn_out")
        )
        if fold_layernorm and _has_layernorm(model):
            scale = _ln_weight(model.block_norm(layer, "ln1"), d_model).double()[None, :, None]
            # LayerNorm reads a centred, rescaled residual: fold both into the readers
            w_q, w_k, w_v = (_centre(w * scale, dim=1) for w in (w_q, w_k, w_v))
            w_o = _centre(w_o, dim=-1)  # the next LayerNorm removes the mean
        ovs.append(w_v @ w_o)
        qks.append(w_q @ w_k.transpose(-1, -2))
    return torch.stack(ovs).float(), torch.stack(qks).float()


@torch.no_grad()
def composition_scores(
    model: ModelHandle,
    *,
    fold_layernorm: bool = True,
    baseline_samples: int = 200,
    seed: int = 0,
) -> CompositionScores:
    """Q-, K- and V-composition scores between every head and every head of later layers.

    >>> from explorer.models import zoo
    >>> c = composition_scores(zoo.attention_only_transformer(n_layers=2, d_model=32))
    >>> tuple(c.between("k", 0, 1).shape), bool(c.get("k")[1, 0, 0, 0].isnan())
    ((4, 4), True)
    """
    _transformer(model)
    ov, qk = head_circuits(model, fold_layernorm=fold_layernorm)
    n_layers, n_heads = ov.shape[0], ov.shape[1]
    scores = torch.full((len(COMPOSITIONS), n_layers, n_heads, n_layers, n_heads), float("nan"))
    for layer_a in range(n_layers):
        left = ov[layer_a][:, None]  # [head_a, 1, d, d]
        for layer_b in range(layer_a + 1, n_layers):
            readers = {
                "q": qk[layer_b],
                "k": qk[layer_b].transpose(-1, -2),
                "v": ov[layer_b],
            }
            for i, kind in enumerate(COMPOSITIONS):
                right = readers[kind][None]  # [1, head_b, d, d]
                scores[i, layer_a, :, layer_b, :] = composition_score(left, right)
    mean, std = random_composition_baseline(
        int(model.d_model or 0), int(model.d_head or 0), n_samples=baseline_samples, seed=seed
    )
    return CompositionScores(scores, COMPOSITIONS, mean, std)


def _token_list(model: ModelHandle, tokens: Sequence[int] | None) -> torch.Tensor:
    d_vocab = model.d_vocab or 0
    if tokens is None:
        bos = getattr(model.config, "bos_token", None)
        return torch.tensor([t for t in range(d_vocab) if t != bos])
    ids = torch.as_tensor(list(tokens), dtype=torch.long)
    if ids.ndim != 1 or ids.numel() < 2:
        raise ValueError(f"tokens must list at least 2 token ids, got {list(ids.shape)}")
    if int(ids.min()) < 0 or int(ids.max()) >= d_vocab:
        raise ValueError(f"token ids must lie in 0..{d_vocab - 1}")
    return ids


@torch.no_grad()
def ov_copying_scores(
    model: ModelHandle,
    *,
    token_ids: Sequence[int] | None = None,
    fold_layernorm: bool = True,
) -> CopyingScores:
    """How much each head's full OV circuit ``M = W_E[ids] W_OV W_U[:, ids]`` maps a token
    to itself: ``eigenvalue = sum(Re lambda) / sum(|lambda|)`` over the eigenvalues of ``M``
    (Elhage et al.; 1 copies, -1 anti-copies, ~0 random) and ``diagonal_top1`` = the share
    of rows whose own token has the largest entry (ARENA; chance ``1 / len(ids)``).

    ``tokens`` restricts rows and columns to these ids. Default: every id but the model's
    BOS token (``config.bos_token``, none dropped if the model has none): BOS is never
    copied and its row is off-distribution; pass ``tokens=range(d_vocab)`` to keep it.
    Positional embeddings and earlier layers are left out: this is the direct path from
    the attended token's embedding, which is what an induction head copies.
    """
    _transformer(model)
    if model.d_vocab != model.n_outputs:
        raise ValueError(
            f"copying needs the same input and output vocabulary, got {model.d_vocab} "
            f"and {model.n_outputs}"
        )
    ids = _token_list(model, token_ids)
    ov, _ = head_circuits(model, fold_layernorm=fold_layernorm)
    w_e = model.weight("embed").double()[ids]
    w_u = model.weight("unembed").double()[:, ids]
    if fold_layernorm and _has_layernorm(model):
        w_e = _centre(w_e, dim=-1)
        w_u = _centre(
            _ln_weight(model.final_norm(), int(model.d_model or 0)).double()[:, None] * w_u, 0
        )
        w_u = _centre(w_u, dim=-1)  # softmax ignores a shift shared by all logits
    full = w_e @ ov.double() @ w_u  # [layer, head, n, n]
    eig = torch.linalg.eigvals(full)
    eigenvalue = eig.real.sum(-1) / eig.abs().sum(-1).clamp(min=1e-30)
    diagonal = (full.argmax(-1) == torch.arange(len(ids))).double().mean(-1)
    return CopyingScores(eigenvalue.float(), diagonal.float(), len(ids))
