"""The OV and QK circuits of attention heads, decomposed and read through the vocabulary.

A head's OV circuit ``W_V W_O`` (``[d_model, d_model]``, rank ``d_head``) says what it
writes for what it reads; its QK circuit ``W_Q W_K^T`` which query directions attend to
which key directions. Their singular value decompositions ``M = U diag(S) V^T`` (as
transformer-lens's ``FactoredMatrix.svd``, computed the same low-rank way: a QR of each
factor and the SVD of the small ``d_head x d_head`` core) give each head's main
directions, ordered by strength. Each direction is read through the vocabulary:

- OV: the input side ``W_E U[:, i]`` (which token embeddings excite direction ``i``) and
  the output side ``V[:, i]^T W_U`` (which logits it raises);
- QK: the query side ``W_E U[:, i]`` and the key side ``W_E V[:, i]``.

Norms are left out (weights only, as ``model.OV`` / ``model.QK``). A singular pair's sign
is arbitrary; it is fixed so that the largest-magnitude entry of the output (OV) or key
(QK) side's vocabulary projection is positive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Float, Int

from explorer._checks import check_choice, check_positive
from explorer._deprecate import renamed_arguments
from explorer._display import MAX_ROWS, Shown, pandas
from explorer.analysis.units import Head, all_heads, units_of_type
from explorer.models.handle import ModelHandle

__all__ = [
    "CircuitSVD",
    "circuit_svd",
]

CIRCUITS = ("OV", "QK")


def low_rank_svd(
    left: Float[torch.Tensor, "*lead m r"], right: Float[torch.Tensor, "*lead r n"]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(U [m, r], S [r], V [n, r])`` with ``left @ right == U diag(S) V^T``."""
    q_left, r_left = torch.linalg.qr(left)
    q_right, r_right = torch.linalg.qr(right.transpose(-1, -2))
    u, s, vh = torch.linalg.svd(r_left @ r_right.transpose(-1, -2))
    return q_left @ u, s, q_right @ vh.transpose(-1, -2)


@dataclass(frozen=True, repr=False)
class CircuitSVD(Shown):
    """Per head: singular values ``S [head, r]``, directions ``U``, ``V [head, d_model, r]``
    and each direction's top tokens on both sides (``[head, r, k]`` ids and values)."""

    circuit: str
    heads: tuple[Head, ...]
    S: Float[torch.Tensor, "head r"]
    U: Float[torch.Tensor, "head d_model r"]
    V: Float[torch.Tensor, "head d_model r"]
    in_ids: Int[torch.Tensor, "head r k"]
    in_values: Float[torch.Tensor, "head r k"]
    out_ids: Int[torch.Tensor, "head r k"]
    out_values: Float[torch.Tensor, "head r k"]
    sides: tuple[str, str]
    token_text: dict[int, str] = field(default_factory=dict)

    def tokens(self, head: int = 0, direction: int = 0) -> tuple[list[str], list[str]]:
        """The top tokens of both sides of one direction of the ``head``-th head listed."""
        return (
            [self.token_text[i] for i in self.in_ids[head, direction].tolist()],
            [self.token_text[i] for i in self.out_ids[head, direction].tolist()],
        )

    def to_dataframe(self) -> Any:
        """One row per head and direction: singular value and both sides' top tokens."""
        pd = pandas()

        rows = []
        for h, head in enumerate(self.heads):
            for d in range(self.S.shape[1]):
                read, written = self.tokens(h, d)
                rows.append(
                    {
                        "head": str(head),
                        "direction": d,
                        "singular_value": float(self.S[h, d]),
                        self.sides[0]: " ".join(read),
                        self.sides[1]: " ".join(written),
                    }
                )
        return pd.DataFrame.from_records(rows)

    def _summary(self) -> str:
        read, written = self.tokens(0, 0)
        return (
            f"{self.circuit}, {len(self.heads)} heads x {self.S.shape[1]} directions; "
            f"{self.heads[0]} top direction S={float(self.S[0, 0]):.3g}: "
            f"{self.sides[0]} {read[:3]} -> {self.sides[1]} {written[:3]}"
        )

    def _table(self) -> tuple:
        rows = []
        for h, head in enumerate(self.heads[:MAX_ROWS]):
            read, written = self.tokens(h, 0)
            rows.append((str(head), float(self.S[h, 0]), " ".join(read), " ".join(written)))
        return (
            f"{self.circuit} circuit SVD: top direction per head",
            ("head", "S", *self.sides),
            rows,
            "",
        )


def _heads(model: ModelHandle, units: object) -> list[Head]:
    return (
        all_heads(model)
        if units is None
        else units_of_type(model, units=units, cls=Head, what="units")
    )


def _sides(circuit: str, model: ModelHandle, U: torch.Tensor, V: torch.Tensor):
    w_e = model.weight("embed").to(U.dtype)  # [vocab, d_model]
    read = torch.einsum("vd,hdr->hrv", w_e, U)
    if circuit == "OV":
        written = torch.einsum("hdr,dv->hrv", V, model.weight("unembed").to(V.dtype))
    else:
        written = torch.einsum("vd,hdr->hrv", w_e, V)
    return read, written


@renamed_arguments(k="n")
@torch.no_grad()
def circuit_svd(
    model: ModelHandle,
    *,
    units: Head | str | Sequence[Head | str] | None = None,
    circuit: str = "OV",
    n: int = 5,
) -> CircuitSVD:
    """SVD of the ``circuit`` ("OV" or "QK") of each head in ``units`` (all heads if None),
    each direction read through the vocabulary (see the module docstring), with its ``n`` top
    tokens on each side. Weights only: no inputs.

    >>> from explorer.models import zoo
    >>> m = zoo.attention_only_transformer(n_layers=1, d_model=16, n_heads=2, d_vocab=10, n_ctx=8)
    >>> svd = circuit_svd(m, units="head 0.1", circuit="OV", n=3)
    >>> tuple(svd.S.shape), tuple(svd.out_ids.shape), svd.sides
    ((1, 8), (1, 8, 3), ('reads', 'writes'))
    """
    if not model.is_transformer:
        raise ValueError(f"{model.name} has no attention heads")
    check_choice("circuit", circuit, CIRCUITS)
    check_positive("n", n)
    heads = _heads(model, units)
    if circuit == "OV":
        left = torch.stack([model.weight("value", h.layer)[h.head] for h in heads])
        right = torch.stack([model.weight("attn_out", h.layer)[h.head] for h in heads])
    else:
        left = torch.stack([model.weight("query", h.layer)[h.head] for h in heads])
        right = torch.stack([model.weight("key", h.layer)[h.head].T for h in heads])
    U, S, V = low_rank_svd(left.double(), right.double())
    read, written = _sides(circuit, model, U, V)
    at = written.abs().argmax(-1, keepdim=True)
    sign = written.gather(-1, at).sign()  # [head, r, 1]
    U, V = U * sign.squeeze(-1)[:, None, :], V * sign.squeeze(-1)[:, None, :]
    read, written = read * sign, written * sign
    kk = min(n, read.shape[-1], written.shape[-1])
    in_values, in_ids = read.topk(kk, dim=-1)
    out_values, out_ids = written.topk(kk, dim=-1)
    used = sorted(set(in_ids.unique().tolist()) | set(out_ids.unique().tolist()))
    text = dict(zip(used, model.to_str_tokens(used)))
    sides = ("reads", "writes") if circuit == "OV" else ("query", "key")
    return CircuitSVD(
        circuit,
        tuple(heads),
        S.float(),
        U.float(),
        V.float(),
        in_ids,
        in_values.float(),
        out_ids,
        out_values.float(),
        sides,
        text,
    )
