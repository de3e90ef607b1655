"""Path patching: the effect of sender heads on receiver heads through one path only.

As in the IOI paper (Wang et al. 2022) and ARENA's ``get_path_patch_head_to_heads``. The
model runs on the *clean* input, and:

1. every head's output ``hook_z`` is frozen at its clean value, except the senders', which
   take their value from the *corrupted* run; MLPs recompute. The receivers' inputs
   (``hook_q``/``hook_k``/``hook_v``, as chosen) are recorded;
2. a second clean run patches only those receiver inputs in, and the metric is measured.

So only the change that flows from the senders into the receivers' queries, keys or values
(directly, or through MLPs) reaches the metric. A metric far from the clean value means
the path matters. Grouped-query attention: the transformer-lens backend gives ``hook_k`` /
``hook_v`` one entry per query head, so a receiver's keys and values are patched for it
alone (exact). Where they stay grouped (the nnsight backend: Hugging Face's projections,
one per key/value head, shared by a group of query heads), patching a receiver's keys
would patch every head of its group, so paths via ``k``/``v`` are refused there.

``senders=None`` sweeps every head upstream of the earliest receiver, one at a time:
``values[layer, head]`` (NaN where a head is not upstream). A list of heads patches them
together: ``values`` is one number. Copies of the batch run stacked, one per sender.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float

from explorer._checks import check_choice
from explorer._display import Shown, pandas
from explorer.analysis._batch_size import accepts_max_tokens, token_budget
from explorer.analysis.metrics import Metric, evaluate, evaluate_copies, recovery
from explorer.analysis.units import Head, units_of_type
from explorer.models.handle import ModelHandle

__all__ = [
    "PathPatchingResult",
    "path_patching",
]

INPUTS = ("q", "k", "v")


@dataclass(frozen=True, repr=False)
class PathPatchingResult(Shown):
    """``values``: the mean metric with the path patched, ``[layer, head]`` for a sweep of
    single senders (NaN where not upstream) or ``[]`` for one sender set."""

    values: Float[torch.Tensor, "..."]
    clean_value: float
    corrupted_value: float
    senders: tuple[Head, ...] | None
    receivers: tuple[Head, ...]
    receiver_inputs: tuple[str, ...]

    @property
    def change(self) -> Float[torch.Tensor, "..."]:
        """``(values - clean) / (clean - corrupted)``: -1 = the path alone does everything
        the corruption does, 0 = no effect (IOI's normalised path-patching score); NaN when
        the clean and corrupted inputs give the same metric. It is ``recovery - 1``."""
        return recovery(self.values, self.clean_value, self.corrupted_value) - 1.0

    def top(self, n: int = 5) -> list[tuple[Head | tuple[Head, ...], float]]:
        """The ``n`` sender ``Head``s whose path changes the metric most, with the change
        (a sweep); for fixed ``senders``, one row: the senders together and the metric."""
        if self.values.ndim != 2:
            return [(tuple(self.senders or ()), float(self.values))]
        delta = (self.values - self.clean_value).nan_to_num(0.0)
        order = delta.abs().flatten().argsort(descending=True)[:n].tolist()
        heads = self.values.shape[1]
        return [(Head(i // heads, i % heads), float(delta.flatten()[i])) for i in order]

    def _top_rows(self, n: int) -> list[tuple[str, float]]:
        return [(_names(k if isinstance(k, tuple) else (k,)), v) for k, v in self.top(n)]

    def to_dataframe(self) -> Any:
        """A sweep: one row per sender head (``layer``, ``head``, ``metric``); one sender
        set: one row (``senders``, ``metric``)."""
        pd = pandas()
        if self.values.ndim != 2:
            return pd.DataFrame({"senders": [_names(self.senders)], "metric": [float(self.values)]})
        layers, heads = self.values.shape
        return pd.DataFrame(
            {
                "layer": [l for l in range(layers) for _ in range(heads)],
                "head": [h for _ in range(layers) for h in range(heads)],
                "metric": self.values.flatten().numpy(),
            }
        )

    def _summary(self) -> str:
        what = "sweep" if self.senders is None else _names(self.senders)
        return (
            f"{what} -> {_names(self.receivers)} via {'/'.join(self.receiver_inputs)}; "
            f"clean {self.clean_value:.4g}, corrupted {self.corrupted_value:.4g}"
        )

    def _top(self) -> list[str]:
        return [f"{k} {v:+.3g}" for k, v in self._top_rows(3)]

    def _table(self) -> tuple:
        title = f"Path patching -> {_names(self.receivers)} ({'/'.join(self.receiver_inputs)})"
        note = f"clean {self.clean_value:.4g}, corrupted {self.corrupted_value:.4g}"
        return title, ("sender", "metric change"), self._top_rows(10), note


def _names(heads: Sequence[Head] | None) -> str:
    return "all" if heads is None else ",".join(f"L{h.layer}H{h.head}" for h in heads)


@accepts_max_tokens
@torch.no_grad()
def path_patching(
    model: ModelHandle,
    inputs: torch.Tensor,
    *,
    corrupted: torch.Tensor,
    receivers: Head | str | Sequence[Head | str],
    metric: Metric,
    senders: Head | str | Sequence[Head | str] | None = None,
    receiver_inputs: str | Sequence[str] = ("q", "k", "v"),
    batch_size: int | None = None,
) -> PathPatchingResult:
    """Path patching from ``senders`` to the ``receiver_inputs`` of ``receivers`` (module
    docstring); ``inputs`` are the clean inputs, ``corrupted`` the corrupted ones.
    ``batch_size`` bounds the inputs (rows) of one forward pass (None: the library chooses).

    >>> from explorer.models import zoo
    >>> from explorer.analysis import metrics
    >>> m = zoo.attention_only_transformer(n_layers=2, d_model=32, n_heads=4, d_vocab=20, n_ctx=8)
    >>> clean, corrupted = torch.tensor([[0, 3, 5, 3]]), torch.tensor([[0, 7, 5, 3]])
    >>> r = path_patching(m, clean, corrupted=corrupted, receivers="head 1.0", receiver_inputs="k",
    ...                   metric=metrics.logit_diff(torch.tensor([5]), torch.tensor([7])))
    >>> tuple(r.values.shape), bool(r.values[1].isnan().all())
    ((2, 4), True)
    """
    if not model.is_transformer:
        raise ValueError(f"{model.name} has no attention heads")
    via = (receiver_inputs,) if isinstance(receiver_inputs, str) else tuple(receiver_inputs)
    for name in via:
        check_choice("receiver input", name, INPUTS)
    _check_grouped(model, via)
    recv = units_of_type(model, units=receivers, cls=Head, what="receivers")
    first = min(h.layer for h in recv)
    if senders is None:
        send_sets = [[Head(l, h)] for l in range(first) for h in range(model.n_heads or 0)]
        if not send_sets:
            raise ValueError(f"no head lies upstream of the receivers (earliest layer {first})")
    else:
        send_sets = [units_of_type(model, units=senders, cls=Head, what="senders")]
        if any(h.layer >= first for h in send_sets[0]):
            raise ValueError(f"senders must lie in layers before the earliest receiver ({first})")
    clean, corrupted = model.check_inputs(inputs), model.check_inputs(corrupted)
    if clean.shape != corrupted.shape:
        raise ValueError(
            f"clean and corrupted inputs must have the same shape, got {list(clean.shape)} "
            f"and {list(corrupted.shape)}"
        )
    z_names = [model.hook_name("z", l) for l in range(model.n_layers)]
    batch = clean.shape[0]

    def value(logits: torch.Tensor) -> torch.Tensor:  # in the pass: no logits come back
        return evaluate(metric, logits, batch)

    clean_values, clean_z = model.cache_pass(clean, names=z_names, reduce=value)
    corrupted_values, corrupted_z = model.cache_pass(corrupted, names=z_names, reduce=value)
    clean_value = float(clean_values.mean())
    corrupted_value = float(corrupted_values.mean())
    targets = sorted({(model.hook_name(i, h.layer), h.head) for h in recv for i in via})
    per_pass = max(1, token_budget(clean, batch_size) // clean.numel())
    results = []
    for start in range(0, len(send_sets), per_pass):
        chunk = send_sets[start : start + per_pass]
        results.append(_run_chunk(model, clean, chunk, clean_z, corrupted_z, targets, metric))
    after = torch.cat(results).mean(1)  # [n_sets]
    if senders is not None:
        values = after[0]
    else:
        values = torch.full((model.n_layers, model.n_heads or 0), float("nan"))
        for (head,), v in zip(send_sets, after):
            values[head.layer, head.head] = v
    return PathPatchingResult(
        values,
        clean_value,
        corrupted_value,
        None if senders is None else tuple(send_sets[0]),
        tuple(recv),
        via,
    )


def _check_grouped(model: ModelHandle, via: tuple[str, ...]) -> None:
    """Paths into keys or values shared by a group of query heads are not one head's."""
    n_heads, n_kv = model.n_heads or 0, model.kv_hook_heads or 0
    grouped = [name for name in via if name in ("k", "v")]
    if grouped and n_kv < n_heads:
        raise ValueError(
            f"path patching via {'/'.join(grouped)} is not exact on {model.name}: its "
            f"hook_k/hook_v hold {n_kv} key/value heads for {n_heads} query heads (each "
            f"shared by {n_heads // n_kv}), so patching a receiver's keys or values would "
            "patch the path into every head of its group. Patch via 'q', or open the model "
            "on the transformer-lens backend (explorer.load(model)), whose hook_k/hook_v "
            "hold one entry per query head"
        )


def _nothing(resid: torch.Tensor) -> torch.Tensor:
    return resid.new_zeros(())


def _run_chunk(
    model: ModelHandle,
    clean: torch.Tensor,
    chunk: list[list[Head]],
    clean_z: dict[str, torch.Tensor],
    corrupted_z: dict[str, torch.Tensor],
    targets: list[tuple[str, int]],
    metric: Metric,
) -> torch.Tensor:
    """``[len(chunk), batch]``: the metric for each sender set, copies stacked."""
    copies, batch = len(chunk), clean.shape[0]
    stacked = clean.repeat(copies, 1)

    def freeze(act: torch.Tensor, hook) -> torch.Tensor:
        out = clean_z[hook.name].repeat(copies, 1, 1, 1).reshape(copies, batch, *act.shape[1:])
        layer = int(hook.name.split(".")[1])
        for c, heads in enumerate(chunk):
            for h in heads:
                if h.layer == layer:
                    out[c, :, :, h.head] = corrupted_z[hook.name][:, :, h.head]
        return out.reshape(act.shape)

    names = sorted({name for name, _ in targets})
    z_hooks = [(model.hook_name("z", l), freeze) for l in range(model.n_layers)]
    # the receivers' inputs come back as the pass's cache (a remote backend returns them);
    # the pass stops after the last receiver's block
    stop = max(int(n.split(".")[1]) for n in names) + 1 if model.stops_early else None
    _, recorded = model.cache_pass(
        stacked, names=names, fwd_hooks=z_hooks, stop_at_layer=stop, reduce=_nothing
    )

    def patch(act: torch.Tensor, hook) -> torch.Tensor:
        act = act.clone()
        for name, head in targets:  # one entry per query head (``_check_grouped``)
            if name == hook.name:
                act[:, :, head] = recorded[name][:, :, head]
        return act

    return model.run_reduced(  # reduced in the pass: a remote backend sends numbers back
        stacked,
        [(n, patch) for n in names],
        lambda logits: evaluate_copies(metric, logits, copies, batch),
    )
