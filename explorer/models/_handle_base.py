"""``HandleBase``: what every backend of the handle protocol shares.

The fields (kind, name, shapes, tokenizer, the pass counter), the structure read from the
transformer config (``cfg``: transformer-lens's config, which every transformer backend
describes its model by), index checks, generic passes built on ``run_with_hooks``,
sweeps (``sweeps``), identity (fingerprint, copies' weights version) and train/eval.
A backend supplies its passes (``run_with_hooks``, ``hooks``), its hook sites
(``_hook_table``), its weights and ``copy``; ``protocol.Handle`` lists the whole surface.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import torch
from torch import nn

from explorer._cancel import check_cancelled
from explorer._checks import check_index
from explorer.models import _tl, fast_paths, sweeps
from explorer.models._handle_inputs import InputsMixin
from explorer.models._handle_weights import WeightsMixin
from explorer.models._padding import PaddedRows
from explorer.models._spent import PassCounter, Spent
from explorer.models._transfer import shape_only

__all__ = ["HandleBase", "HookFn", "InputKind"]

InputKind = Literal["tokens", "images"]
HookFn = Callable[..., Any]
Hooks = Sequence[tuple[str | Callable[[str], bool], HookFn]]


class HandleBase(InputsMixin, WeightsMixin):
    """Shared behaviour of the protocol's backends (see the module docstring).

    ``edits_fan_out``: a hook may return more rows than it got (copies of the batch made
    mid-pass, which the sweeps use); False for backends whose passes keep the batch size.
    """

    edits_fan_out = True
    # whether a pass's activations come back with their autograd graph (not from a server)
    returns_gradients = True
    # a tensor of an activation's shape that costs one element to send back (``_transfer``)
    shape_only = staticmethod(shape_only)

    def __init__(
        self,
        model: nn.Module,
        *,
        kind: InputKind,
        config: Any | None = None,
        input_shape: Sequence[int] | None = None,
        vocab: Sequence[str] | None = None,
        name: str = "model",
        tokenizer: Any | None = None,
        family: str | None = None,
        image_shape: Sequence[int] | None = None,
        counted: nn.Module | None = None,
    ) -> None:
        self.model = model  # the torch module a pass runs (``as_torch_module``)
        self.kind: InputKind = kind
        self.config = config
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        # (C, H, W) image tools work on; the model may take it flat (models.shapes)
        self.image_shape = tuple(image_shape) if image_shape is not None else None
        self.vocab = tuple(vocab) if vocab is not None else None
        self.name = name
        self.tokenizer = tokenizer
        self.family = family
        self.parity: Any | None = None  # hf.Parity: logit agreement with the source model
        self.note: str | None = None  # what this handle cannot do, when opened by a fallback
        self.prepend_bos = True  # to_tokens puts the tokenizer's BOS first (if it has one)
        self._fingerprint: tuple[int, str] | None = None
        self._token_strings: tuple[str, ...] | None = None
        self.spent = Spent()  # every pass of the module, however it was called (budgets read it)
        # batches check_inputs returned (and their version): checked once, not per pass
        self._checked: list[tuple[weakref.ref[torch.Tensor], int]] = []
        self._padded = PaddedRows()  # masks of the rows to_tokens padded (``_padding``)
        counter = PassCounter(self.spent)
        counted = model if counted is None else counted
        counted.register_forward_pre_hook(counter.forward, with_kwargs=True)
        counted.register_forward_hook(counter.watch_backward)
        self._counted = counted  # the module whose passes count (``add_pass_guard``)

    # ----------------------------------------------------------------- structure
    cfg: Any  # transformer-lens's config of a transformer (a property or a field)

    def _hook_table(self) -> Mapping[str, Any]:
        """Hook name -> whatever the backend keeps for it (a ``HookPoint``, a module path)."""
        raise NotImplementedError

    @property
    def is_transformer(self) -> bool:
        return self.kind == "tokens"

    @property
    def hook_names(self) -> list[str]:
        return list(self._hook_table())

    @property
    def n_layers(self) -> int:
        return int(self.cfg.n_layers)

    @property
    def n_heads(self) -> int | None:
        return int(self.cfg.n_heads) if self.is_transformer else None

    @property
    def d_model(self) -> int | None:
        return int(self.cfg.d_model) if self.is_transformer else None

    @property
    def d_head(self) -> int | None:
        return int(self.cfg.d_head) if self.is_transformer else None

    @property
    def d_vocab(self) -> int | None:
        return int(self.cfg.d_vocab) if self.is_transformer else None

    @property
    def n_ctx(self) -> int | None:
        return int(self.cfg.n_ctx) if self.is_transformer else None

    @property
    def runs_from_layer(self) -> bool:
        """Whether a forward pass can start at a block from a residual stream
        (``model(resid, start_at_layer=l)``)."""
        return False

    @property
    def stops_early(self) -> bool:
        """Whether a forward pass can stop after a layer (``stop_at_layer``)."""
        return False

    @property
    def has_mlp(self) -> bool:
        return not self.cfg.attn_only if self.is_transformer else True

    @property
    def d_mlp(self) -> int | None:
        """Neurons per MLP layer for transformers; the first hidden width for plain models."""
        if self.is_transformer:
            return None if not self.has_mlp else int(self.cfg.d_mlp)
        return self.layer_widths[0]

    @property
    def layer_widths(self) -> tuple[int, ...]:
        """Number of neurons (or channels) in each layer's MLP; empty if attention-only."""
        return (self.d_mlp,) * self.n_layers if self.has_mlp else ()  # type: ignore[return-value]

    @property
    def n_outputs(self) -> int | None:
        if self.is_transformer:
            return int(self.cfg.d_vocab_out)
        if self.config is not None and hasattr(self.config, "n_classes"):
            return int(self.config.n_classes)
        return None

    def __repr__(self) -> str:
        if self.is_transformer:
            mlp = f"d_mlp={self.d_mlp}" if self.has_mlp else "attn-only"
            shape = (
                f"n_layers={self.n_layers}, n_heads={self.n_heads}, d_model={self.d_model}, {mlp}"
            )
        else:
            shape = f"layers={list(self.layer_widths)}"
        extra = "".join(f", {x}" for x in (self.family, self.parity, self.note) if x)
        return f"ModelHandle({self.name!r}, {self.kind}, {shape}{extra})"

    # ------------------------------------------------------------------- checks
    def check_layer(self, layer: int) -> int:
        return check_index(
            "layer", layer, self.n_layers, f"({self.name} has {self.n_layers} layers)"
        )

    def check_head(self, layer: int, head: int) -> tuple[int, int]:
        if not self.is_transformer:
            raise ValueError(f"{self.name} is a {self.kind} model without attention heads")
        layer = self.check_layer(layer)
        return layer, check_index("head", head, self.n_heads or 0, f"in layer {layer}")

    def check_neuron(self, layer: int, neuron: int) -> tuple[int, int]:
        if not self.has_mlp:
            raise ValueError(f"{self.name} is attention-only: it has no MLP neurons")
        layer = self.check_layer(layer)
        return layer, check_index("neuron", neuron, self.layer_widths[layer], f"in layer {layer}")

    def check_hook(self, name: str) -> str:
        if name not in self._hook_table():
            close = [h for h in self.hook_names if name.split(".")[-1] in h][:6]
            hint = f"; similar: {close}" if close else f"; e.g. {self.hook_names[:6]}"
            raise ValueError(f"unknown hook {name!r} for {self.name}{hint}")
        return name

    def hook_name(self, kind: str, layer: int | None = None) -> str:
        """The hook name for an activation kind ("pattern", "z", "post", "resid_pre", ...)."""
        if layer is not None:
            layer = self.check_layer(layer)
        return self.check_hook(_tl.act_name(kind, layer))

    def _resolve_names(self, names: str | Iterable[str] | None) -> list[str]:
        if names is None:
            return self.hook_names
        if isinstance(names, str):
            names = [names]
        return [self.check_hook(n) for n in names]

    # ---------------------------------------------------------------- running
    def add_pass_guard(self, guard: Callable[[int], None]) -> Callable[[], None]:
        """Call ``guard(examples)`` before every pass, however it was called; an exception
        it raises refuses the pass (before it is counted in ``spent``). Returns a function
        that removes the guard. A session's budget of forward passes is such a guard."""

        def before(_module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            guard(_examples(args, kwargs))

        hook = self._counted.register_forward_pre_hook(before, with_kwargs=True, prepend=True)
        return hook.remove

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        """Run the model (the pass is counted in ``spent``, as every pass is)."""
        inputs = self.check_inputs(inputs)
        check_cancelled()
        return self.model(inputs, **self._mask_kwargs(inputs))

    def run_with_hooks(
        self, inputs: torch.Tensor, fwd_hooks: Hooks, *, stop_at_layer: int | None = None
    ) -> torch.Tensor:
        raise NotImplementedError

    def cache_pass(
        self,
        inputs: torch.Tensor,
        names: str | Iterable[str] | None = None,
        *,
        stop_at_layer: int | None = None,
        fwd_hooks: Hooks = (),
        select: Callable[[str, torch.Tensor], torch.Tensor] | None = None,
        reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Run once and return ``(output, {hook name: activation})`` for the hooks asked for.

        Only the named hooks are cached (all if ``names`` is None), which keeps memory small.
        ``stop_at_layer`` (transformers): run blocks ``0..stop_at_layer - 1`` only; the
        output is then that residual stream, and hooks of later layers do not fire.
        ``fwd_hooks`` edit the pass as in ``run_with_hooks`` (a name's cached value is read
        after them). ``select(name, act)`` keeps only what the caller needs of each
        activation (a remote backend computes it there, so only that comes back);
        ``reduce(output)`` likewise (e.g. the metric instead of the logits).
        """
        inputs = self.check_inputs(inputs)
        wanted = self._resolve_names(names)
        for name, _ in fwd_hooks:
            if isinstance(name, str):
                self.check_hook(name)
        cache: dict[str, torch.Tensor] = {}

        def save(act: torch.Tensor, hook: Any) -> None:
            cache[hook.name] = (act if select is None else select(hook.name, act)).detach()

        out = self.run_with_hooks(
            inputs,
            [*fwd_hooks, *[(n, save) for n in wanted]],
            stop_at_layer=stop_at_layer,
        )
        return (out if reduce is None else reduce(out)), cache

    def run_reduced(
        self,
        inputs: torch.Tensor,
        fwd_hooks: Hooks,
        reduce: Callable[[torch.Tensor], torch.Tensor],
    ) -> torch.Tensor:
        """``reduce(logits)`` of one pass with hooks: a backend that runs elsewhere (nnsight
        with ``remote=True``) reduces there, so only the reduced numbers come back."""
        return reduce(self.run_with_hooks(inputs, fwd_hooks))

    def run_sweep(self, inputs: torch.Tensor, plan: sweeps.SweepPlan) -> torch.Tensor:
        """``plan.reduce`` per intervention and example, ``[n_interventions, batch]``: this
        backend chunks the copies of the batch, fans them out where the architecture allows
        and runs them (``sweeps``). ``inputs`` were checked by the caller."""
        return sweeps.run(self, inputs, plan)

    def sweep_bases(self, hooks: Sequence[str]) -> list[str]:
        """The residual hooks a sweep at ``hooks`` starts its passes from: cache them in the
        clean pass callers run anyway (``SweepPlan.clean``), or ``run_sweep`` runs one more."""
        return sweeps.bases(self, hooks)

    def sweep_reads(self, hooks: Sequence[str]) -> set[str]:
        """The swept ``hooks`` whose clean activations ``run_sweep`` reads."""
        return sweeps.reads_clean(self, hooks)

    def last_position_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits at the last position only ``[batch, vocab]`` (a classifier's ``[batch,
        classes]``), with the last block run for that position alone where the architecture
        allows it (``fast_paths.last_position_logits``): what training steps need."""
        return fast_paths.last_position_logits(self, inputs)

    def _mask_kwargs(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    # ----------------------------------------------------------- identity
    def fingerprint(self) -> str:
        """A short hash of the weights: names a checkpoint in verdicts and caches."""
        version = self.weights_version()
        if self._fingerprint is not None and self._fingerprint[0] == version:
            return self._fingerprint[1]
        digest = hashlib.sha256()
        for key, value in sorted(self.model.state_dict().items()):
            digest.update(key.encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        result = digest.hexdigest()[:16]
        self._fingerprint = (version, result)
        return result

    def weights_version(self) -> int:
        """A counter that moves whenever a weight is changed in place (no hashing, so a view
        can check it around every request; ``fingerprint`` names the weights themselves)."""
        return sum(p._version for p in self.model.parameters())

    def _copy_fields(self, other: HandleBase) -> None:
        other.parity, other.note, other.prepend_bos = self.parity, self.note, self.prepend_bos
        other._padded = self._padded  # batches padded for one copy run on the other

    @property
    def training(self) -> bool:
        return bool(self.model.training)

    def as_torch_module(self) -> nn.Module:
        """The ``nn.Module`` a pass runs, for a library that takes a module (captum's
        DeepLift, its layer methods). Analysis asks the handle its questions instead of
        reading inside this; tests/test_architecture.py allows the call in attribution
        only (``test_as_torch_module_is_called_by_attribution_only``)."""
        return self.model

    def train(self, mode: bool = True) -> HandleBase:
        self.model.train(mode)
        return self

    def eval(self) -> HandleBase:
        self.model.eval()
        return self

    # ------------------------------------------------------ units of plain models
    def unit_weights(self, layer: int, neuron: int, direction: str) -> torch.Tensor:
        """Weights of one unit of a plain MLP/CNN (``module_handle.ModuleHandle``)."""
        raise self._plain_only()

    def unit_weight_masks(
        self, layer: int, neurons: Sequence[int], weights: str
    ) -> dict[nn.Parameter, torch.Tensor]:
        """Masks of the weights of units of a plain MLP/CNN (``module_handle``)."""
        raise self._plain_only()

    def set_unit_weights(self, layer: int, neuron: int, **weights: Any) -> None:
        """Write one unit's weights of a plain MLP/CNN (``module_handle``)."""
        raise self._plain_only()

    def _plain_only(self) -> ValueError:
        return ValueError(
            f"{self.name} is a transformer: read its weights with weight(name, layer) "
            "(mlp_in, mlp_out, query, ...); unit weights are for plain MLP/CNN models"
        )


def _examples(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    first = args[0] if args else next(iter(kwargs.values()), None)
    return len(first) if isinstance(first, torch.Tensor) and first.ndim > 0 else 0
