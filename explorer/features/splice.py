"""Splicing an SAE into a handle's forward pass, with its error term kept, and editing features.

At the SAE's hook the activation ``x`` is replaced by

    decode(edit(encode(x))) + (x - decode(encode(x)))

so with no edit the pass is the original model's (to float rounding: 1e-5 is tested), and
an edit changes only the edited features' contributions: the reconstruction error the SAE
leaves stays in the stream. As in SAELens's ``HookedSAETransformer(use_error_term=True)``
the error term is computed without gradient: gradients reach ``x`` through the features.
A transcoder reads ``hook`` (the MLP's input) and replaces ``hook_out`` (the MLP's output)
the same way: ``mlp_out + decode(edit(f)) - decode(f)``.

Everything goes through the handle's hooks, so it runs on every backend:

- ``splice_hooks(sae, edit)`` gives ``[(hook name, fn), ...]`` to pass wherever hooks go
  (``run_with_hooks``, ``cache_pass(fwd_hooks=...)``, an analysis's ``fwd_hooks``; the
  nnsight backend included);
- ``run_spliced(model, inputs, sae, edit)`` runs once and returns the output;
- ``spliced(model, sae, edit)`` is a context manager over ``model.hooks`` (the
  transformer-lens, light and plain-module backends; nnsight handles take hooks per pass).

An edit is a mapping ``{feature index: what to do}``, applied to the feature activations
``[..., d_sae]`` (at one ``position`` of a token model when given, else everywhere):

- a number or a tensor (broadcast to ``[batch, pos]``): set the activation to it
  (``0.0`` or ``"zero"`` ablates; a mean or a resampled activation ablates likewise; a large
  value clamps a feature on);
- ``Scale(factor)``: multiply it; ``Add(amount)``: add to it (steering);

or any function ``acts -> acts`` on the whole ``[..., d_sae]`` tensor (a sweep's batched
edit). ``record`` (a dict) receives the edited feature activations under the hook's name,
in the autograd graph (for attribution with respect to features).

>>> import torch
>>> from explorer.models import zoo
>>> from explorer.features import SparseAutoencoder
>>> model = zoo.attention_only_transformer(n_layers=1, d_model=8, d_vocab=10, n_ctx=6)
>>> sae = SparseAutoencoder.create("blocks.0.hook_resid_post", d_in=8, d_sae=16, k=4)
>>> tokens = torch.tensor([[1, 2, 3, 4]])
>>> bool((run_spliced(model, tokens, sae) - model(tokens)).abs().max() < 1e-5)
True
>>> edited = run_spliced(model, tokens, sae, {0: "zero", 3: Scale(2.0), 5: Add(1.0)})
>>> edited.shape
torch.Size([1, 4, 10])
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from explorer._checks import check_model
from explorer.features.sae import SparseAutoencoder

__all__ = [
    "Add",
    "Edit",
    "Scale",
    "check_hooks_fit",
    "edit_features",
    "run_spliced",
    "splice_hooks",
    "spliced",
]


@dataclass(frozen=True)
class Scale:
    """Multiply a feature's activation by ``factor``."""

    factor: float


@dataclass(frozen=True)
class Add:
    """Add ``amount`` to a feature's activation (steering along its decoder direction)."""

    amount: float


Value = float | int | str | torch.Tensor | Scale | Add
Edit = Mapping[int, Value] | Callable[[torch.Tensor], torch.Tensor] | None
ALLOWED = (
    "a number or tensor (set the activation), 'zero', Scale(factor) or Add(amount); "
    "or one function acts -> acts over all features"
)


def edit_features(
    acts: torch.Tensor, edit: Edit, sae: SparseAutoencoder, *, position: int | None = None
) -> torch.Tensor:
    """Feature activations ``[..., d_sae]`` with ``edit`` applied (a new tensor; ``acts`` is
    not changed). ``position`` limits a mapping's edits to one token position (axis 1).

    >>> sae = SparseAutoencoder.create("hook_x", d_in=4, d_sae=6, k=6)
    >>> edit_features(torch.ones(1, 2, 6), {1: 5.0, 2: Scale(3.0)}, sae, position=1)[0, :, :3]
    tensor([[1., 1., 1.],
            [1., 5., 3.]])
    """
    if edit is None:
        return acts
    if callable(edit) and not isinstance(edit, Mapping):
        out = edit(acts)
        if not isinstance(out, torch.Tensor) or out.shape != acts.shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"an edit function must return feature activations of shape "
                f"{tuple(acts.shape)}, got {got}"
            )
        return out
    if not isinstance(edit, Mapping):
        raise TypeError(f"edit must be a mapping {{feature: value}} or a function: {ALLOWED}")
    out = acts.clone()
    if position is not None:
        if acts.ndim < 3:
            raise ValueError(
                f"position={position} needs activations with a position axis; "
                f"{sae.hook} gives shape {tuple(acts.shape)}"
            )
        n_pos = acts.shape[1]
        if not -n_pos <= int(position) < n_pos:
            raise ValueError(
                f"position {position} out of range: valid positions are 0..{n_pos - 1}"
            )
    for feature, value in edit.items():
        i = sae.check_feature(feature)
        current = out[:, int(position), ..., i] if position is not None else out[..., i]
        new = _new_value(current, value, feature)
        if position is not None:
            out[:, int(position), ..., i] = new
        else:
            out[..., i] = new
    return out


def _new_value(current: torch.Tensor, value: Value, feature: int) -> torch.Tensor:
    if isinstance(value, Scale):
        return current * float(value.factor)
    if isinstance(value, Add):
        return current + float(value.amount)
    if isinstance(value, str):
        if value != "zero":
            raise ValueError(
                f"edit of feature {feature}: {value!r} is not an edit; allowed: {ALLOWED}"
            )
        return torch.zeros_like(current)
    if isinstance(value, torch.Tensor):
        try:
            return value.to(current.dtype).to(current.device).expand_as(current)
        except RuntimeError:
            raise ValueError(
                f"edit of feature {feature}: a tensor of shape {tuple(value.shape)} does not "
                f"broadcast to the activations' shape {tuple(current.shape)}"
            ) from None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.full_like(current, float(value))
    raise TypeError(
        f"edit of feature {feature}: {type(value).__name__} {value!r} is not an edit; allowed: {ALLOWED}"
    )


def _replace(
    sae: SparseAutoencoder,
    x_in: torch.Tensor,
    x_out: torch.Tensor,
    edit: Edit,
    position: int | None,
    record: dict[str, torch.Tensor] | None,
    keep_error: bool = True,
) -> torch.Tensor:
    """What the spliced pass carries at ``hook_out``: the edited reconstruction plus the
    SAE's (gradient-free) error on ``x_out``."""
    if x_in.device != sae.device:
        raise ValueError(
            f"{sae.name} is on {sae.device} but the activation at {sae.hook} is on "
            f"{x_in.device}: move the SAE to the model's device with sae.to({str(x_in.device)!r})"
        )
    acts = sae.encode(x_in)
    edited = edit_features(acts, edit, sae, position=position)
    if record is not None:
        record[sae.hook] = edited
    if not keep_error:
        return sae.decode(edited).to(x_out.dtype)
    with torch.no_grad():
        error = x_out.to(acts.dtype) - sae.decode(acts)
    return (sae.decode(edited) + error).to(x_out.dtype)


def splice_hooks(
    sae: SparseAutoencoder,
    edit: Edit = None,
    *,
    position: int | None = None,
    record: dict[str, torch.Tensor] | None = None,
    keep_error: bool = True,
) -> list[tuple[str, Callable[..., Any]]]:
    """Forward hooks ``[(hook name, fn)]`` that splice ``sae`` in with its error term kept
    (``keep_error=False``: the reconstruction alone replaces the activation, as SAE quality's
    "loss with the SAE" measures)."""
    if not isinstance(sae, SparseAutoencoder):
        raise TypeError(
            f"splice needs a features.SparseAutoencoder, got {type(sae).__name__}: wrap an "
            "SAELens SAE with SparseAutoencoder.from_saelens(sae) or load one with load_sae"
        )
    if edit is not None and isinstance(edit, Mapping):
        for feature in edit:
            sae.check_feature(feature)
    if sae.hook_out == sae.hook:

        def splice(act: torch.Tensor, hook: Any) -> torch.Tensor:
            return _replace(sae, act, act, edit, position, record, keep_error)

        return [(sae.hook, splice)]
    seen: dict[str, torch.Tensor] = {}

    def read_in(act: torch.Tensor, hook: Any) -> None:
        seen["in"] = act

    def splice_out(act: torch.Tensor, hook: Any) -> torch.Tensor:
        if "in" not in seen:
            raise ValueError(
                f"transcoder {sae.name}: {sae.hook_out} ran before {sae.hook} in this pass; "
                "a transcoder reads an earlier hook than the one it writes"
            )
        return _replace(sae, seen.pop("in"), act, edit, position, record, keep_error)

    return [(sae.hook, read_in), (sae.hook_out, splice_out)]


def check_hooks_fit(model: Any, sae: SparseAutoencoder) -> None:
    """A ValueError naming the hook and the model's hooks of that kind when ``model`` has no
    hook the SAE reads or writes."""
    check_model(model, "splicing an SAE")
    names = set(model.hook_names)
    for hook in sae.hooks:
        if hook not in names:
            kind = hook.rsplit(".", 1)[-1]
            alike = [h for h in model.hook_names if h.endswith(kind)][:8]
            hint = (
                f"its {kind} hooks are {alike}"
                if alike
                else f"its hooks include {model.hook_names[:8]}"
            )
            raise ValueError(
                f"{sae.name} {'reads' if hook == sae.hook else 'writes'} hook {hook!r}, which {model.name} does not have: {hint}"
            )


def run_spliced(
    model: Any,
    inputs: Any,
    sae: SparseAutoencoder,
    edit: Edit = None,
    *,
    position: int | None = None,
    record: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """One pass of ``model`` on ``inputs`` with ``sae`` spliced in (and ``edit`` applied)."""
    check_hooks_fit(model, sae)
    inputs = model.check_inputs(inputs)
    return model.run_with_hooks(inputs, splice_hooks(sae, edit, position=position, record=record))


@contextmanager
def spliced(
    model: Any,
    sae: SparseAutoencoder,
    edit: Edit = None,
    *,
    position: int | None = None,
    record: dict[str, torch.Tensor] | None = None,
) -> Iterator[Any]:
    """Within the block every pass of ``model`` runs with ``sae`` spliced in. Backends that
    take hooks per pass (nnsight) refuse it: pass ``splice_hooks(...)`` to the pass instead."""
    check_hooks_fit(model, sae)
    with model.hooks(splice_hooks(sae, edit, position=position, record=record)):
        yield model
