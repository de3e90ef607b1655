"""The logit lens: read the residual stream after each layer as if it were the last one.

For every layer ``l`` the accumulated residual stream ``resid_pre[l]`` (and the final
``resid_post``) goes through the final norm, with its statistics recomputed from that
stream, and the unembedding::

    lens[l] = norm_final(resid_pre[l]) @ W_U + b_U

which is transformer-lens's ``cache.accumulated_resid(apply_ln=True) @ W_U + b_U`` (the
last row is the model's own logits). Rows are labelled as transformer-lens labels them:
``0_pre``, ``1_pre``, ..., ``final_post`` (``{l}_mid`` rows too with ``incl_mid=True``).

Only the top ``k`` tokens and one target token per row and position are kept: one row's
``[batch, pos, vocab]`` logits exist at a time, never the stack of all rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Float, Int

from explorer._checks import check_positive
from explorer._deprecate import renamed_arguments
from explorer._display import MAX_ROWS, Shown, pandas
from explorer.analysis.logit_attribution import TokenSpec, resolve_tokens
from explorer.models.handle import ModelHandle

__all__ = [
    "LogitLens",
    "logit_lens",
]


@dataclass(frozen=True, repr=False)
class LogitLens(Shown):
    """Top tokens and a target's logit per lens row (layer) and position.

    ``top_ids``/``top_logits`` are ``[row, batch, pos, k]``; ``target_logit`` and
    ``target_rank`` (0 = top-1) are ``[row, batch, pos]`` for ``target_ids [batch, pos]``.
    ``token_text`` maps every id that appears to its display string.
    """

    top_ids: Int[torch.Tensor, "row batch pos k"]
    top_logits: Float[torch.Tensor, "row batch pos k"]
    target_ids: Int[torch.Tensor, "batch pos"]
    target_logit: Float[torch.Tensor, "row batch pos"]
    target_rank: Int[torch.Tensor, "row batch pos"]
    labels: tuple[str, ...]
    input_text: tuple[str, ...]
    token_text: dict[int, str] = field(default_factory=dict)

    def top_tokens(self, row: int, position: int, example: int = 0) -> list[str]:
        """The top-k token strings at one row and position."""
        return [self.token_text[i] for i in self.top_ids[row, example, position].tolist()]

    def first_row(self, position: int = -1, example: int = 0) -> str | None:
        """The first row from which the target is the top-1 token for good (None if never)."""
        top1 = (self.target_rank[:, example, position] == 0).tolist()
        for i in range(len(top1)):
            if all(top1[i:]):
                return self.labels[i]
        return None

    def to_dataframe(self, example: int = 0) -> Any:
        """One row per (layer row, position) of ``example``: top token, its logit, target
        logit and rank."""
        pd = pandas()
        records = []
        for r, label in enumerate(self.labels):
            for p, text in enumerate(self.input_text):
                records.append(
                    {
                        "row": label,
                        "position": p,
                        "input": text,
                        "top": self.token_text[int(self.top_ids[r, example, p, 0])],
                        "top_logit": float(self.top_logits[r, example, p, 0]),
                        "target": self.token_text[int(self.target_ids[example, p])],
                        "target_logit": float(self.target_logit[r, example, p]),
                        "target_rank": int(self.target_rank[r, example, p]),
                    }
                )
        return pd.DataFrame.from_records(records)

    def _summary(self) -> str:
        rows, batch, pos, k = self.top_ids.shape
        last = " ".join(repr(self.token_text[int(self.top_ids[r, 0, -1, 0])]) for r in range(rows))
        return (
            f"{rows} rows x {batch} examples x {pos} positions, top {k}; "
            f"top-1 at the last position by row: {last}"
        )

    def _table(self) -> tuple:
        header = ("row", *(f"{p} {t}" for p, t in enumerate(self.input_text[:12])))
        n = len(self.labels)  # at most MAX_ROWS rows, evenly spaced, the output row last
        shown = sorted(
            {round(i * (n - 1) / (MAX_ROWS - 1)) for i in range(MAX_ROWS)}
            if n > MAX_ROWS
            else range(n)
        )
        rows = [
            (
                self.labels[r],
                *(self.token_text[int(i)] for i in self.top_ids[r, 0, :12, 0].tolist()),
            )
            for r in shown
        ]
        note = f"{len(rows)} of {n} rows" if n > MAX_ROWS else ""
        return "Logit lens: top-1 token per layer and position", header, rows, note


def _lens_rows(model: ModelHandle, incl_mid: bool) -> list[tuple[str, str]]:
    rows = []
    for l in range(model.n_layers):
        rows.append((f"{l}_pre", model.hook_name("resid_pre", l)))
        if incl_mid and model.has_mlp:
            rows.append((f"{l}_mid", model.hook_name("resid_mid", l)))
    rows.append(("final_post", model.hook_name("resid_post", model.n_layers - 1)))
    return rows


@renamed_arguments(k="n")
@torch.no_grad()
def logit_lens(
    model: ModelHandle,
    inputs: Int[torch.Tensor, "batch pos"],
    *,
    target: TokenSpec | None = None,
    n: int = 5,
    incl_mid: bool = False,
) -> LogitLens:
    """The logit lens over every layer and position (see the module docstring).

    Args:
        model: a transformer handle.
        inputs: token ids ``[batch, pos]``.
        target: the token whose logit and rank each row reports: an id or a token string
            (same at every position), ids ``[batch, pos]``, or None for the model's own
            top-1 prediction at each position.
        n: how many top tokens to keep per row and position.
        incl_mid: also read ``resid_mid`` (between attention and MLP) of each layer.

    >>> from explorer.models import zoo
    >>> m = zoo.attention_only_transformer(n_layers=2, d_model=32, n_heads=4, d_vocab=20, n_ctx=8)
    >>> lens = logit_lens(m, torch.tensor([[0, 3, 5, 3]]), n=3)
    >>> lens.labels, tuple(lens.top_ids.shape)
    (('0_pre', '1_pre', 'final_post'), (3, 1, 4, 3))
    >>> bool((lens.target_rank[-1] == 0).all())  # the last row is the model's own output
    True
    """
    if not model.is_transformer:
        raise ValueError(f"{model.name} takes images: the logit lens needs a transformer")
    check_positive("n", n)
    tokens = model.check_inputs(inputs)
    batch, n_pos = tokens.shape
    d_vocab = model.n_outputs or 0
    if n > d_vocab:
        raise ValueError(f"n={n} exceeds the vocabulary ({d_vocab} tokens)")
    rows = _lens_rows(model, incl_mid)
    logits, cache = model.cache_pass(tokens, names=sorted({h for _, h in rows}))
    if target is None:
        target_ids = logits.argmax(-1)
    else:
        target_ids = _target_grid(model, target, batch, n_pos)
    top_ids, top_logits, target_logit, target_rank = [], [], [], []
    for _, hook in rows:
        lens = model.resid_to_logits(cache[hook]).float()  # one row: [b, p, vocab]
        values, ids = lens.topk(n, dim=-1)
        top_ids.append(ids)
        top_logits.append(values)
        chosen = lens.gather(-1, target_ids[..., None])
        target_logit.append(chosen[..., 0])
        target_rank.append((lens > chosen).sum(-1))
    top = torch.stack(top_ids)
    used = sorted(set(top.unique().tolist()) | set(target_ids.unique().tolist()))
    text = dict(zip(used, model.to_str_tokens(used)))
    return LogitLens(
        top,
        torch.stack(top_logits),
        target_ids,
        torch.stack(target_logit),
        torch.stack(target_rank),
        tuple(label for label, _ in rows),
        tuple(model.to_str_tokens(tokens[0])),
        text,
    )


def _target_grid(model: ModelHandle, target: TokenSpec, batch: int, n_pos: int) -> torch.Tensor:
    if isinstance(target, torch.Tensor) and target.ndim == 2:
        if tuple(target.shape) != (batch, n_pos):
            raise ValueError(
                f"target ids must be [batch, pos] = [{batch}, {n_pos}], got {list(target.shape)}"
            )
        flat = resolve_tokens(model, spec=target.reshape(-1), batch=batch * n_pos, what="target")
        return flat.reshape(batch, n_pos)
    return (
        resolve_tokens(model, spec=target, batch=batch, what="target")[:, None]
        .expand(batch, n_pos)
        .clone()
    )
