"""``ModelHandle``: the one type every part of explorer speaks to, whatever the model.

A handle wraps a transformer-lens ``HookedRootModule`` (a ``HookedTransformer`` or a plain
module given hook points) and knows what analysis and views need: hook names, whether
inputs are tokens or images, the layer/head/neuron counts used to check indices, token
strings, and how to run with a cache or with hooks. Hook functions have the
transformer-lens signature ``fn(activation, hook) -> activation | None``.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import weakref
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal

import torch
from torch import nn

from explorer._cancel import check_cancelled
from explorer._checks import check_index
from explorer.models import _tl
from explorer.models import light as _light
from explorer.models._handle_inputs import InputsMixin
from explorer.models._handle_weights import LayerModules, WeightsMixin
from explorer.models._padding import PaddedRows
from explorer.models._spent import PassCounter, Spent
from explorer.models._temporary_hooks import TemporaryHooks
from explorer.models.config import CNNConfig, MLPConfig, TransformerConfig
from explorer.models.hooked_module import wrap_module

__all__ = ["HookFn", "InputKind", "LayerModules", "ModelHandle", "Spent"]

InputKind = Literal["tokens", "images"]
HookFn = Callable[..., Any]
Config = TransformerConfig | MLPConfig | CNNConfig


class ModelHandle(InputsMixin, WeightsMixin):
    """A model with hook points and the facts explorer needs about it.

    Build one with ``explorer.load`` or a zoo builder, not directly. ``edits_fan_out``: a
    hook may return more rows than it got (copies of the batch made mid-pass, which the
    sweeps use); False for backends whose passes keep the batch size (nnsight).

    >>> from explorer.models import zoo
    >>> m = zoo.attention_only_transformer(n_layers=2, d_model=32, n_heads=4, d_vocab=20, n_ctx=16)
    >>> m.kind, m.n_layers, m.n_heads
    ('tokens', 2, 4)
    >>> m.hook_name("pattern", 1)
    'blocks.1.attn.hook_pattern'
    """

    edits_fan_out = True
    # whether a pass's activations come back with their autograd graph (not from a server)
    returns_gradients = True

    def __init__(
        self,
        model: nn.Module,
        *,
        kind: InputKind,
        config: Config | None = None,
        input_shape: Sequence[int] | None = None,
        vocab: Sequence[str] | None = None,
        name: str = "model",
        tokenizer: Any | None = None,
        family: str | None = None,
        image_shape: Sequence[int] | None = None,
    ) -> None:
        if not hasattr(model, "hook_dict"):
            raise TypeError(
                f"ModelHandle needs a transformer-lens HookedRootModule, got {type(model).__name__}; "
                "use explorer.load(module) to add hook points to a plain nn.Module"
            )
        self.model = model
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
        counted = self._counted_module(model)
        counted.register_forward_pre_hook(counter.forward, with_kwargs=True)
        counted.register_forward_hook(counter.watch_backward)

    # ----------------------------------------------------------------- structure
    @property
    def is_transformer(self) -> bool:
        return self.kind == "tokens"

    @property
    def hook_names(self) -> list[str]:
        return list(self.model.hook_dict)  # type: ignore[attr-defined]

    @property
    def n_layers(self) -> int:
        if self.is_transformer:
            return int(self.model.cfg.n_layers)  # type: ignore[attr-defined]
        return len(self.model.blocks)  # type: ignore[attr-defined]

    @property
    def n_heads(self) -> int | None:
        return int(self.model.cfg.n_heads) if self.is_transformer else None  # type: ignore[attr-defined]

    @property
    def d_model(self) -> int | None:
        return int(self.model.cfg.d_model) if self.is_transformer else None  # type: ignore[attr-defined]

    @property
    def d_head(self) -> int | None:
        return int(self.model.cfg.d_head) if self.is_transformer else None  # type: ignore[attr-defined]

    @property
    def d_vocab(self) -> int | None:
        return int(self.model.cfg.d_vocab) if self.is_transformer else None  # type: ignore[attr-defined]

    @property
    def n_ctx(self) -> int | None:
        return int(self.model.cfg.n_ctx) if self.is_transformer else None  # type: ignore[attr-defined]

    @property
    def runs_from_layer(self) -> bool:
        """Whether a forward pass can start at a block from a residual stream
        (``model(resid, start_at_layer=l)``): decoders yes; BERT's encoder has no such entry."""
        return self.is_transformer and (
            _tl.is_hooked_transformer(self.model) or _light.is_light(self.model)
        )

    @property
    def has_mlp(self) -> bool:
        if self.is_transformer:
            return not self.model.cfg.attn_only  # type: ignore[attr-defined]
        return True

    @property
    def d_mlp(self) -> int | None:
        """Neurons per MLP layer for transformers; the first hidden width for plain models."""
        if self.is_transformer:
            return None if not self.has_mlp else int(self.model.cfg.d_mlp)  # type: ignore[attr-defined]
        return self.layer_widths[0]

    @property
    def layer_widths(self) -> tuple[int, ...]:
        """Number of neurons (or channels) in each layer's MLP; empty if attention-only."""
        if self.is_transformer:
            return (self.d_mlp,) * self.n_layers if self.has_mlp else ()  # type: ignore[return-value]
        return tuple(b.width for b in self.model.found_blocks)  # type: ignore[attr-defined]

    @property
    def n_outputs(self) -> int | None:
        if self.is_transformer:
            return int(self.model.cfg.d_vocab_out)  # type: ignore[attr-defined]
        if self.config is not None and hasattr(self.config, "n_classes"):
            return int(self.config.n_classes)  # type: ignore[union-attr]
        out = getattr(self.model, "output_layer", None)  # a plain module: its last Linear
        if out is not None:
            layer = self.model.module.get_submodule(out)  # type: ignore[union-attr, operator]
            if isinstance(layer, nn.Linear):
                return int(layer.out_features)
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
        if name not in self.model.hook_dict:  # type: ignore[attr-defined]
            close = [h for h in self.hook_names if name.split(".")[-1] in h][:6]
            hint = f"; similar: {close}" if close else f"; e.g. {self.hook_names[:6]}"
            raise ValueError(f"unknown hook {name!r} for {self.name}{hint}")
        return name

    def hook_name(self, kind: str, layer: int | None = None) -> str:
        """The hook name for an activation kind ("pattern", "z", "post", "resid_pre", ...)."""
        if layer is not None:
            layer = self.check_layer(layer)
        return self.check_hook(_tl.act_name(kind, layer))

    # ---------------------------------------------------------------- running
    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        """Run the model (the pass is counted in ``spent``, as every pass is)."""
        inputs = self.check_inputs(inputs)
        check_cancelled()
        return self.model(inputs, **self._mask_kwargs(inputs))

    def _counted_module(self, model: nn.Module) -> nn.Module:
        """The module whose passes ``spent`` counts (a backend may run an inner one)."""
        return model

    @property
    def stops_early(self) -> bool:
        """Whether a forward pass can stop after a layer (``stop_at_layer``): decoder
        transformers (``HookedTransformer``), not encoders or plain modules."""
        forward = getattr(self.model, "forward", None)
        return self.is_transformer and "stop_at_layer" in inspect.signature(forward).parameters

    def cache_pass(
        self,
        inputs: torch.Tensor,
        names: str | Iterable[str] | None = None,
        *,
        stop_at_layer: int | None = None,
        fwd_hooks: Sequence[tuple[str | Callable[[str], bool], HookFn]] = (),
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

    def run_with_hooks(
        self,
        inputs: torch.Tensor,
        fwd_hooks: Sequence[tuple[str | Callable[[str], bool], HookFn]],
        *,
        stop_at_layer: int | None = None,
    ) -> torch.Tensor:
        """Run with temporary hooks ``[(hook name or name filter, fn(act, hook))]``
        (``stop_at_layer`` as in ``cache_pass``). Inputs are checked unless
        ``check_inputs`` returned them."""
        inputs = self.check_inputs(inputs)
        for name, _ in fwd_hooks:
            if isinstance(name, str):
                self.check_hook(name)
        kwargs = {}
        if stop_at_layer is not None:
            if not self.stops_early:
                raise ValueError(
                    f"stop_at_layer is for decoder transformers; {self.name} "
                    f"({type(self.model).__name__}) cannot stop after a layer"
                )
            check_index("stop_at_layer", stop_at_layer, self.n_layers + 1, "(0..n_layers)")
            kwargs["stop_at_layer"] = stop_at_layer
        kwargs.update(self._mask_kwargs(inputs))
        check_cancelled()
        with self.hooks(fwd_hooks):
            return self.model(inputs, **kwargs)

    def run_reduced(
        self,
        inputs: torch.Tensor,
        fwd_hooks: Sequence[tuple[str | Callable[[str], bool], HookFn]],
        reduce: Callable[[torch.Tensor], torch.Tensor],
    ) -> torch.Tensor:
        """``reduce(logits)`` of one pass with hooks: a backend that runs elsewhere (nnsight
        with ``remote=True``) reduces there, so only the reduced numbers come back."""
        return reduce(self.run_with_hooks(inputs, fwd_hooks))

    def hooks(
        self, fwd_hooks: Sequence[tuple[str | Callable[[str], bool], HookFn]]
    ) -> AbstractContextManager[Any]:
        """Context manager that adds hooks and removes them on exit, even after an error.

        Only the hooks added here are removed, touching only their hook points (not every
        hook point of the model, as transformer-lens's ``hooks`` does: on a 12-layer model
        that walk cost more than a small sweep's own work).
        """
        return TemporaryHooks(self.model.hook_dict, fwd_hooks)  # type: ignore[attr-defined]

    def _resolve_names(self, names: str | Iterable[str] | None) -> list[str]:
        if names is None:
            return self.hook_names
        if isinstance(names, str):
            names = [names]
        return [self.check_hook(n) for n in names]

    # ----------------------------------------------------------- identity
    def fingerprint(self) -> str:
        """A short hash of the weights: names a checkpoint in verdicts and caches."""
        version = sum(p._version for p in self.model.parameters())
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

    def copy(self) -> ModelHandle:
        """An independent copy (its own weights and hooks)."""
        if self.is_transformer:
            model = copy.deepcopy(self.model)
        else:
            model = wrap_module(self.model.unwrapped_copy()).eval()  # type: ignore[attr-defined]
        other = ModelHandle(
            model,
            kind=self.kind,
            config=self.config,
            input_shape=self.input_shape,
            vocab=self.vocab,
            name=self.name,
            tokenizer=self.tokenizer,
            family=self.family,
            image_shape=self.image_shape,
        )
        other.parity, other.note, other.prepend_bos = self.parity, self.note, self.prepend_bos
        other._padded = self._padded  # batches padded for one copy run on the other
        return other

    @property
    def training(self) -> bool:
        return bool(self.model.training)

    def as_torch_module(self) -> nn.Module:
        """The wrapped ``nn.Module``, for a library that takes a module (captum's DeepLift,
        its layer methods). Analysis asks the handle its questions instead of reading
        inside this; tests/test_architecture.py holds it to that."""
        return self.model

    def train(self, mode: bool = True) -> ModelHandle:
        self.model.train(mode)
        return self

    def eval(self) -> ModelHandle:
        self.model.eval()
        return self
