"""Direct logit attribution (DLA): how much each component writes the answer's logit directly.

The final residual stream is a sum of what every component wrote: the embeddings, each
head's output ``z_h W_O^h``, each neuron's ``post_n W_out^n``, and biases. The final norm
divides the whole stream by one scale per position, so, as transformer-lens's
``ActivationCache.apply_ln_to_stack`` does, each component ``c`` is read with the scale
``s`` of the actual run (``ln_final.hook_scale``)::

    dla(c) = (c - mean(c)) / s  .  (w_ln * (W_U[:, A] - W_U[:, B]))

(no centring for RMSNorm, no ``w_ln`` for ``LNPre``/``RMSPre``, nothing for a model
without a norm). ``B`` is optional: the direction is the logit of token ``A`` or the logit
difference ``A - B``. Centring a component equals centring the direction, so no
``[component, d_model]`` stack is ever built: heads are read as ``z . (W_O^h d)`` and
neurons as ``post . (W_out d)``, only at the attributed position.

The granularity (``granularity=``; labels as transformer-lens writes them):
- ``"layer"``: ``embed``, ``pos_embed``, ``{l}_attn_out``, ``{l}_mlp_out``
  (``decompose_resid``); with the norm bias and ``b_U`` they sum to the logit exactly;
- ``"head"``: ``L{l}H{h}`` (``stack_head_results``);
- ``"neuron"``: ``L{l}N{n}`` (``stack_neuron_results``);
- ``"all"``: heads, neurons, ``embed``, ``pos_embed``, ``bias`` (the ``b_O`` and ``b_out``
  of every layer), as ``get_full_resid_decomposition(expand_neurons=True)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from einops import einsum
from jaxtyping import Float, Int

from explorer._checks import check_choice
from explorer._deprecate import _warn, renamed_arguments
from explorer._display import Shown, pandas
from explorer.analysis.units import Head, Neuron
from explorer.models.handle import ModelHandle

__all__ = [
    "LogitAttribution",
    "direct_logit_attribution",
]

GRANULARITIES = ("layer", "head", "neuron", "all")
_PLURAL = {"layers": "layer", "heads": "head", "neurons": "neuron"}  # before issue 24
TokenSpec = int | str | Sequence[int] | torch.Tensor


def resolve_tokens(model: ModelHandle, *, spec: TokenSpec, batch: int, what: str) -> torch.Tensor:
    """Token ids ``[batch]`` from an id, a token string, or one id per example."""
    if isinstance(spec, str):
        ids = torch.full((batch,), model.to_single_token(spec), dtype=torch.long)
    elif isinstance(spec, int) and not isinstance(spec, bool):
        ids = torch.full((batch,), spec, dtype=torch.long)
    else:
        ids = torch.as_tensor(spec)
        if ids.dtype.is_floating_point or ids.dtype == torch.bool:
            raise TypeError(f"{what} must be token ids, a token string or an id, got {ids.dtype}")
        ids = ids.long().reshape(-1) if ids.ndim == 0 else ids.long()
        if ids.numel() == 1:
            ids = ids.reshape(1).expand(batch).clone()
        if ids.shape != (batch,):
            raise ValueError(
                f"{what} needs one token per example ({batch}), got shape {list(ids.shape)}"
            )
    d_vocab = model.n_outputs or 0
    bad = (ids < 0) | (ids >= d_vocab)
    if bad.any():
        raise ValueError(f"{what} token id {int(ids[bad][0])} out of range 0..{d_vocab - 1}")
    return ids


def resolve_positions(position: int | Sequence[int] | torch.Tensor, batch: int, n_pos: int):
    """Positions ``[batch]`` (negative counts from the end), checked against ``n_pos``."""
    pos = torch.as_tensor(position, dtype=torch.long).reshape(-1)
    if pos.numel() == 1:
        pos = pos.expand(batch).clone()
    if pos.shape != (batch,):
        raise ValueError(
            f"position needs one int or one per example ({batch}), got {list(pos.shape)}"
        )
    if ((pos < -n_pos) | (pos >= n_pos)).any():
        raise ValueError(f"position {pos.tolist()} out of range: sequences have {n_pos} positions")
    return pos % n_pos


def describe_direction(model: ModelHandle, *, target: torch.Tensor, against: torch.Tensor | None):
    first = lambda ids: (
        repr(model.to_str_tokens(ids[:1])[0]) + ("..." if ids.unique().numel() > 1 else "")
    )
    return first(target) + ("" if against is None else f" - {first(against)}")


def norm_direction(
    model: ModelHandle, *, direction: Float[torch.Tensor, "batch d_model"]
) -> Float[torch.Tensor, "batch d_model"]:
    """The direction a raw (un-normed) component is read along, before dividing by the scale:
    ``w_ln * d``, centred for LayerNorm (``(c - mean c) . v == c . (v - mean v)``)."""
    kind, weight, _ = model.final_norm()
    if weight is not None:
        direction = direction * weight
    if kind in ("LN", "LNPre"):
        direction = direction - direction.mean(-1, keepdim=True)
    return direction


def read_direction(
    model: ModelHandle,
    *,
    last_logits: Float[torch.Tensor, "batch vocab"],
    target: torch.Tensor,
    against: torch.Tensor | None,
    scale: torch.Tensor | None,
) -> tuple[Float[torch.Tensor, "batch d_model"], Float[torch.Tensor, " batch"]]:
    """``(read, logit)``: the direction a raw component is read along at the attributed
    position (through the final norm, divided by the run's own ``scale [batch, 1]``) and
    the model's own logit (difference) there. ``target``/``against`` are resolved ids."""
    w_u = model.weight("unembed")
    direction = w_u[:, target].T  # [b, d_model]
    logit = last_logits.gather(-1, target[:, None])[:, 0]
    if against is not None:
        direction = direction - w_u[:, against].T
        logit = logit - last_logits.gather(-1, against[:, None])[:, 0]
    read = norm_direction(model, direction=direction)
    if scale is not None:
        read = read / scale  # [b, 1]: the run's own scale
    return read, logit


def head_dla(
    model: ModelHandle,
    *,
    layer: int,
    z: Float[torch.Tensor, "batch head d_head"],
    read: Float[torch.Tensor, "batch d_model"],
) -> Float[torch.Tensor, "batch head"]:
    """Each head's direct effect ``z . (W_O^h read)`` (``z`` at the attributed position)."""
    w_o_read = einsum(model.weight("attn_out", layer), read, "h e d, b d -> b h e")
    return einsum(z, w_o_read, "b h e, b h e -> b h")


def neuron_dla(
    model: ModelHandle,
    *,
    layer: int,
    post: Float[torch.Tensor, "batch neuron"],
    read: Float[torch.Tensor, "batch d_model"],
) -> Float[torch.Tensor, "batch neuron"]:
    """Each neuron's direct effect ``post . (W_out read)`` (at the attributed position)."""
    return post * (read @ model.weight("mlp_out", layer).T)


@dataclass(frozen=True, repr=False)
class LogitAttribution(Shown):
    """``values[batch, unit]``: each unit's direct effect on the logit (difference).

    ``logit`` is the model's own logit (difference) at the attributed position; for
    ``granularity="layer"`` the values plus the bias terms (``remainder``) add up to it.
    """

    values: Float[torch.Tensor, "batch unit"]
    labels: tuple[str, ...]
    granularity: str
    direction: str
    logit: Float[torch.Tensor, " batch"]
    positions: Int[torch.Tensor, " batch"]
    n_layers: int

    def mean(self) -> Float[torch.Tensor, " unit"]:
        return self.values.mean(0)

    @property
    def mean_logit(self) -> float:
        """The model's own logit (difference), averaged over the batch."""
        return float(self.logit.mean())

    @property
    def mean_remainder(self) -> float:
        """``remainder`` averaged over the batch."""
        return float(self.remainder.mean())

    @property
    def remainder(self) -> Float[torch.Tensor, " batch"]:
        """``logit - values.sum(unit)``: what the listed units do not write directly."""
        return self.logit - self.values.sum(-1)

    def grid(self) -> Float[torch.Tensor, "layer x"]:
        """Batch-mean values as ``[layer, head]`` or ``[layer, neuron]`` (heads/neurons)."""
        if self.granularity not in ("head", "neuron"):
            raise ValueError(
                f"grid() is for granularity='head' or 'neuron', not {self.granularity!r}"
            )
        return self.mean().reshape(self.n_layers, -1)

    def unit(self, index: int) -> Head | Neuron | None:
        """The head or neuron of column ``index`` (None for embeddings, layers, bias)."""
        label = self.labels[index]
        if label.startswith("L") and "H" in label:
            layer, head = label[1:].split("H")
            return Head(int(layer), int(head))
        if label.startswith("L") and "N" in label:
            layer, neuron = label[1:].split("N")
            return Neuron(int(layer), int(neuron))
        return None

    def top(self, n: int = 5, *, by_abs: bool = True) -> list[tuple[Head | Neuron | str, float]]:
        """The ``n`` largest batch-mean attributions (by magnitude unless ``by_abs=False``):
        a ``Head`` or ``Neuron`` for a unit's column, the label for a component that is not
        a unit (``embed``, ``0_attn_out``, ``bias``)."""
        return [(self.unit(i) or self.labels[i], v) for i, v in self._ranked(n, by_abs)]

    def _ranked(self, n: int, by_abs: bool = True) -> list[tuple[int, float]]:
        mean = self.mean()
        order = (mean.abs() if by_abs else mean).argsort(descending=True)[:n]
        return [(i, float(mean[i])) for i in order.tolist()]

    def to_dataframe(self) -> Any:
        """One row per unit: ``unit``, ``mean`` and ``std`` over the batch."""
        pd = pandas()
        std = self.values.std(0) if self.values.shape[0] > 1 else torch.zeros(len(self.labels))
        return pd.DataFrame(
            {"unit": list(self.labels), "mean": self.mean().numpy(), "std": std.numpy()}
        )

    def _summary(self) -> str:
        batch, n = self.values.shape
        return (
            f"{self.granularity}, {batch} examples x {n} units, {self.direction}; "
            f"logit {float(self.logit.mean()):+.3g}"
        )

    def _top(self) -> list[str]:
        return [f"{self.labels[i]} {v:+.3g}" for i, v in self._ranked(3)]

    def _table(self) -> tuple:
        rows = [(self.labels[i], value) for i, value in self._ranked(10)]
        note = f"model logit {float(self.logit.mean()):+.4g}, mean over {self.values.shape[0]} examples"
        return f"Direct logit attribution: {self.direction}", ("unit", "dla"), rows, note


def _hooks_for(model: ModelHandle, granularity: str) -> dict[str, list[str]]:
    layers = range(model.n_layers)
    want: dict[str, list[str]] = {}
    if granularity in ("layer", "all"):  # the embeddings are components of the stream too
        want["embed"] = ["hook_embed"]
        if "hook_pos_embed" in model.hook_names:
            want["pos_embed"] = ["hook_pos_embed"]
    if granularity in ("head", "all"):
        want["z"] = [model.hook_name("z", l) for l in layers]
    if granularity in ("neuron", "all") and model.has_mlp:
        want["post"] = [model.hook_name("post", l) for l in layers]
    if granularity == "layer":
        want["attn_out"] = [model.hook_name("attn_out", l) for l in layers]
        if model.has_mlp:
            want["mlp_out"] = [model.hook_name("mlp_out", l) for l in layers]
    if model.final_norm()[0] is not None:
        want["scale"] = ["ln_final.hook_scale"]
    return want


@torch.no_grad()
def run_at_positions(
    model: ModelHandle, inputs: torch.Tensor, *, names: list[str], positions: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Run once and keep each named activation only at ``positions`` (one per example):
    ``(logits [batch, pos, vocab], {name: act[b, positions[b]]})``."""
    rows = torch.arange(inputs.shape[0])

    def at_positions(name: str, act: torch.Tensor) -> torch.Tensor:
        return act[rows, positions].clone()

    # selected inside the pass: a remote backend sends back [batch, ...] per hook, not caches
    return model.cache_pass(inputs, names=names, select=at_positions)


@renamed_arguments(units="granularity")
@torch.no_grad()
def direct_logit_attribution(
    model: ModelHandle,
    inputs: Int[torch.Tensor, "batch pos"],
    *,
    target: TokenSpec,
    against: TokenSpec | None = None,
    granularity: str = "head",
    position: int | Sequence[int] | torch.Tensor = -1,
) -> LogitAttribution:
    """Each unit's direct effect on the logit of ``target`` (minus ``against``) at
    ``position``, through the final norm of the actual run (see the module docstring).

    Args:
        model: a transformer handle.
        inputs: token ids ``[batch, pos]``.
        target, against: a token id, a token string, or one id per example.
        granularity: ``"layer"``, ``"head"``, ``"neuron"`` or ``"all"`` (the plural spellings
            of before issue 24 still work for one release, with a warning).
        position: the position whose logits are explained (one, or one per example).

    >>> from explorer.models import zoo
    >>> m = zoo.attention_only_transformer(n_layers=2, d_model=32, n_heads=4, d_vocab=20, n_ctx=8)
    >>> dla = direct_logit_attribution(m, torch.tensor([[0, 3, 5, 3]]), target="t5", granularity="head")
    >>> tuple(dla.values.shape), dla.labels[:2], tuple(dla.grid().shape)
    ((1, 8), ('L0H0', 'L0H1'), (2, 4))
    """
    if not model.is_transformer:
        raise ValueError(f"{model.name} takes images: direct logit attribution needs a transformer")
    if granularity in _PLURAL:
        _warn(
            f"direct_logit_attribution(granularity={granularity!r})",
            f"direct_logit_attribution(granularity={_PLURAL[granularity]!r})",
            stacklevel=5,
        )
        granularity = _PLURAL[granularity]
    check_choice("DLA granularity", granularity, GRANULARITIES)
    if granularity == "neuron" and not model.has_mlp:
        raise ValueError(f"{model.name} is attention-only: it has no neurons to attribute")
    tokens = model.check_inputs(inputs)
    batch, n_pos = tokens.shape
    positions = resolve_positions(position, batch, n_pos)
    target_ids = resolve_tokens(model, spec=target, batch=batch, what="target")
    against_ids = (
        None
        if against is None
        else resolve_tokens(model, spec=against, batch=batch, what="against")
    )
    want = _hooks_for(model, granularity)
    logits, acts = run_at_positions(
        model, tokens, names=[n for v in want.values() for n in v], positions=positions
    )
    last = logits[torch.arange(batch), positions]  # [b, vocab]
    read, logit = read_direction(
        model,
        last_logits=last,
        target=target_ids,
        against=against_ids,
        scale=acts.get("ln_final.hook_scale"),
    )
    columns: list[torch.Tensor] = []
    labels: list[str] = []

    def add(name: str, written: torch.Tensor) -> None:  # one component: [batch, d_model]
        columns.append((written * read).sum(-1, keepdim=True))
        labels.append(name)

    if granularity in ("head", "all"):
        for l, name in enumerate(want["z"]):
            columns.append(head_dla(model, layer=l, z=acts[name], read=read))
            labels.extend(f"L{l}H{h}" for h in range(columns[-1].shape[1]))
    if granularity in ("neuron", "all") and "post" in want:
        for l, name in enumerate(want["post"]):
            columns.append(neuron_dla(model, layer=l, post=acts[name], read=read))
            labels.extend(f"L{l}N{n}" for n in range(columns[-1].shape[1]))
    if "embed" in want:
        add("embed", acts["hook_embed"])
    if "pos_embed" in want:
        add("pos_embed", acts["hook_pos_embed"])
    if granularity == "layer":
        for l in range(model.n_layers):
            add(f"{l}_attn_out", acts[want["attn_out"][l]])
            if "mlp_out" in want:
                add(f"{l}_mlp_out", acts[want["mlp_out"][l]])
    if granularity == "all":
        bias = sum(model.weight("attn_out_bias", l) for l in range(model.n_layers))
        if model.has_mlp:
            bias = bias + sum(model.weight("mlp_out_bias", l) for l in range(model.n_layers))
        add("bias", bias.expand_as(read))  # type: ignore[union-attr]
    values = torch.cat(columns, dim=1).float()
    return LogitAttribution(
        values,
        tuple(labels),
        granularity,
        describe_direction(model, target=target_ids, against=against_ids),
        logit.float(),
        positions,
        model.n_layers,
    )
