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
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal

import torch
from jaxtyping import Float
from torch import nn

from explorer._cancel import check_cancelled
from explorer._checks import check_index, check_tensor
from explorer.models import _tl
from explorer.models import light as _light
from explorer.models.config import CNNConfig, MLPConfig, TransformerConfig
from explorer.models.hooked_module import wrap_module

InputKind = Literal["tokens", "images"]
HookFn = Callable[..., Any]
Config = TransformerConfig | MLPConfig | CNNConfig
_MODEL_WEIGHTS = ("W_E", "W_pos", "W_U", "b_U")
_LAYER_WEIGHTS = ("W_Q", "W_K", "W_V", "W_O", "b_O", "W_in", "W_out", "b_out")


class Spent:
    """What a handle has run: forward and backward passes (model calls) and examples.

    >>> s = Spent(); s.forward, s.backward, s.examples
    (0, 0, 0)
    """

    def __init__(self) -> None:
        self.forward = 0
        self.backward = 0
        self.examples = 0

    def snapshot(self) -> tuple[int, int, int]:
        return (self.forward, self.backward, self.examples)

    def __repr__(self) -> str:
        return f"Spent(forward={self.forward}, backward={self.backward}, examples={self.examples})"


class _PassCounter:
    """Hooks on the model's module that count every pass into ``spent``: analysis also runs
    ``handle.model(...)`` directly (captum, editing, interventions), and those passes are
    spent too. A backward pass is counted once per forward pass whose output it reaches.
    A deep copy of the module gets an inert counter (the copy's own handle counts it)."""

    def __init__(self, spent: Spent | None) -> None:
        self.spent = spent

    def __deepcopy__(self, memo: dict[int, Any]) -> _PassCounter:
        return _PassCounter(None)

    def forward(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if self.spent is None:
            return
        self.spent.forward += 1
        first = args[0] if args else next(iter(kwargs.values()), None)
        if isinstance(first, torch.Tensor) and first.ndim > 0:
            self.spent.examples += len(first)

    def watch_backward(self, module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        tensor = out if isinstance(out, torch.Tensor) else getattr(out, "logits", None)
        if self.spent is not None and isinstance(tensor, torch.Tensor) and tensor.requires_grad:
            tensor.register_hook(self.backward)

    def backward(self, grad: torch.Tensor) -> None:
        if self.spent is not None:
            self.spent.backward += 1


class ModelHandle:
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
        counter = _PassCounter(self.spent)
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

    def check_inputs(self, inputs: Any) -> torch.Tensor:
        """Validate a batch: token ids [batch, pos] (or text, see ``to_tokens``) or images
        [batch, *input_shape]."""
        if self.is_transformer:
            if _is_text(inputs):
                inputs = self.to_tokens(inputs)
            tokens = check_tensor("tokens", inputs, ndim=(1, 2), integer=True)
            if tokens.dtype == torch.bool:
                raise TypeError(
                    "tokens must be integer token ids, got a bool tensor (a mask?): "
                    "convert ids with tokens.long()"
                )
            if tokens.dtype != torch.long:  # uint8/int32 ids index the embedding as int64
                tokens = tokens.long()
            if tokens.ndim == 1:
                tokens = tokens.unsqueeze(0)
            n_ctx, d_vocab = self.n_ctx or 0, self.d_vocab or 0
            if tokens.shape[1] > n_ctx:
                raise ValueError(
                    f"sequence length {tokens.shape[1]} exceeds the context of {self.name} (n_ctx {n_ctx})"
                )
            lo, hi = int(tokens.min()), int(tokens.max())
            if lo < 0 or hi >= d_vocab:
                raise ValueError(f"token ids must lie in 0..{d_vocab - 1}, got range {lo}..{hi}")
            return tokens
        images = check_tensor("images", inputs, integer=False)
        shape = tuple(images.shape[1:])
        if self.input_shape is not None and shape != self.input_shape:
            if tuple(images.shape) in (self.input_shape, self.image_shape):
                return self.to_inputs(images.unsqueeze(0))
            if self.image_shape is not None and shape == self.image_shape:
                return self.to_inputs(images)  # an image for a model that takes it flat
            raise ValueError(f"images must have shape {self._accepted()}, got {list(images.shape)}")
        return images

    def _accepted(self) -> str:
        shapes = [s for s in (self.input_shape, self.image_shape) if s is not None]
        return " or ".join(f"[batch, {', '.join(map(str, s))}]" for s in dict.fromkeys(shapes))

    def to_inputs(
        self, images: Float[torch.Tensor, "batch c h w"]
    ) -> Float[torch.Tensor, "batch ..."]:
        """Images ``[batch, *image_shape]`` as the model takes them (``[batch, *input_shape]``:
        flattened for a model whose first layer reads flat pixels); differentiable."""
        if self.input_shape is None or self.image_shape == self.input_shape:
            return images
        return images.reshape(images.shape[0], *self.input_shape)

    def check_images(self, inputs: Any) -> Float[torch.Tensor, "batch c h w"]:
        """A batch as images ``[batch, *image_shape]`` (inputs of the model's own shape,
        flat ones too, are reshaped): what attribution maps, feature visualisation, weight
        images and audits work on."""
        if self.is_transformer:
            raise ValueError(f"{self.name} takes tokens, not images")
        if self.image_shape is None:
            took = f"inputs of shape {list(self.input_shape)}" if self.input_shape else "inputs"
            raise ValueError(
                f"{self.name} takes {took} that explorer cannot show as images: pass "
                "image_shape=(channels, height, width) to explorer.load"
            )
        inputs = check_tensor("images", inputs, integer=False)
        if self.input_shape is None and tuple(inputs.shape[1:]) != self.image_shape:
            if tuple(inputs.shape) == self.image_shape:
                return inputs.unsqueeze(0)
            raise ValueError(f"images must have shape {self._accepted()}, got {list(inputs.shape)}")
        inputs = self.check_inputs(inputs)
        return inputs.reshape(inputs.shape[0], *self.image_shape)

    # ---------------------------------------------------------------- running
    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        """Run the model (the pass is counted in ``spent``, as every pass is)."""
        inputs = self.check_inputs(inputs)
        check_cancelled()
        return self.model(inputs)

    def _counted_module(self, model: nn.Module) -> nn.Module:
        """The module whose passes ``spent`` counts (a backend may run an inner one)."""
        return model

    @property
    def stops_early(self) -> bool:
        """Whether a forward pass can stop after a layer (``stop_at_layer``): decoder
        transformers (``HookedTransformer``), not encoders or plain modules."""
        forward = getattr(self.model, "forward", None)
        return self.is_transformer and "stop_at_layer" in inspect.signature(forward).parameters

    def run_with_cache(
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
            _checked=True,
        )
        return (out if reduce is None else reduce(out)), cache

    def run_with_hooks(
        self,
        inputs: torch.Tensor,
        fwd_hooks: Sequence[tuple[str | Callable[[str], bool], HookFn]],
        *,
        stop_at_layer: int | None = None,
        _checked: bool = False,
    ) -> torch.Tensor:
        """Run with temporary hooks ``[(hook name or name filter, fn(act, hook))]``
        (``stop_at_layer`` as in ``run_with_cache``)."""
        if not _checked:
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
        check_cancelled()
        with self.hooks(fwd_hooks):
            return self.model(inputs, **kwargs)

    def run_reduced(
        self,
        inputs: torch.Tensor,
        fwd_hooks: Sequence[tuple[str | Callable[[str], bool], HookFn]],
        reduce: Callable[[torch.Tensor], torch.Tensor],
        *,
        _checked: bool = False,
    ) -> torch.Tensor:
        """``reduce(logits)`` of one pass with hooks: a backend that runs elsewhere (nnsight
        with ``remote=True``) reduces there, so only the reduced numbers come back."""
        return reduce(self.run_with_hooks(inputs, fwd_hooks, _checked=_checked))

    def hooks(
        self, fwd_hooks: Sequence[tuple[str | Callable[[str], bool], HookFn]]
    ) -> AbstractContextManager[Any]:
        """Context manager that adds hooks and removes them on exit, even after an error.

        Only the hooks added here are removed, touching only their hook points (not every
        hook point of the model, as transformer-lens's ``hooks`` does: on a 12-layer model
        that walk cost more than a small sweep's own work).
        """
        return _TemporaryHooks(self.model.hook_dict, fwd_hooks)  # type: ignore[attr-defined]

    def _resolve_names(self, names: str | Iterable[str] | None) -> list[str]:
        if names is None:
            return self.hook_names
        if isinstance(names, str):
            names = [names]
        return [self.check_hook(n) for n in names]

    # ----------------------------------------------------------------- tokens
    def to_str_tokens(self, tokens: torch.Tensor | Sequence[int]) -> list[str]:
        """Display strings of a 1-D token sequence (names from the vocab or tokenizer)."""
        if not self.is_transformer:
            raise ValueError(f"{self.name} takes images, not tokens")
        ids = torch.as_tensor(tokens).flatten().tolist()
        if self.vocab is not None:
            return [self.vocab[i] if 0 <= i < len(self.vocab) else f"<{i}>" for i in ids]
        tokenizer = self.tokenizer or getattr(self.model, "tokenizer", None)
        if tokenizer is not None:
            return [tokenizer.decode([i]) for i in ids]
        return [str(i) for i in ids]

    # ----------------------------------------------------------------- weights
    def weight(self, name: str, layer: int | None = None) -> torch.Tensor:
        """A transformer weight by its transformer-lens name, detached.

        Model-wide: ``W_E [vocab, d_model]``, ``W_pos [n_ctx, d_model]`` (learned positions
        only), ``W_U [d_model, vocab_out]``, ``b_U``. Per layer: ``W_Q``, ``W_K``, ``W_V``
        ``[head, d_model, d_head]`` (grouped-query keys/values repeated to every head),
        ``W_O [head, d_head, d_model]``, ``b_O``, ``W_in``, ``W_out [d_mlp, d_model]``,
        ``b_out``.
        """
        if not self.is_transformer:
            raise ValueError(f"{self.name} takes images: it has no transformer weights")
        if name in _MODEL_WEIGHTS:
            if layer is not None:
                raise ValueError(f"{name} belongs to the whole model: pass no layer")
            if name == "W_pos" and not hasattr(self.model, "pos_embed"):
                raise ValueError(f"{self.name} has no learned position embedding (W_pos)")
            return getattr(self.model, name).detach()
        if name not in _LAYER_WEIGHTS:
            raise ValueError(
                f"unknown weight {name!r}: choose one of {', '.join(_MODEL_WEIGHTS + _LAYER_WEIGHTS)}"
            )
        if layer is None:
            raise ValueError(f"{name} is a per-layer weight: pass layer=0..{self.n_layers - 1}")
        block = self.model.blocks[self.check_layer(layer)]  # type: ignore[index]
        if name in ("W_in", "W_out", "b_out"):
            if not self.has_mlp:
                raise ValueError(f"{self.name} is attention-only: it has no {name}")
            return getattr(block.mlp, name).detach()
        return getattr(block.attn, name).detach()

    @property
    def normalization(self) -> str | None:
        """The norm before each sublayer and the unembedding: ``"LN"``, ``"LNPre"``, ``"RMS"``,
        ``"RMSPre"`` or None (transformer-lens's ``normalization_type``)."""
        return self.model.cfg.normalization_type if self.is_transformer else None  # type: ignore[attr-defined]

    def final_norm(self) -> tuple[str | None, torch.Tensor | None, torch.Tensor | None]:
        """``(normalization, weight, bias)`` of the norm before the unembedding.

        Weight and bias are None where the norm has none (``LNPre``, ``RMSPre``, no norm);
        the per-position scale is the activation ``ln_final.hook_scale``.
        """
        kind = self.normalization
        ln = getattr(self.model, "ln_final", None)
        if kind is None or ln is None:
            return None, None, None
        w, b = getattr(ln, "w", None), getattr(ln, "b", None)
        return (
            kind,
            None if w is None else w.detach(),
            None if b is None else b.detach(),
        )

    def resid_to_logits(
        self, resid: Float[torch.Tensor, "*batch d_model"]
    ) -> Float[torch.Tensor, "*batch vocab"]:
        """The logits the model would give if ``resid`` were its final residual stream: the
        final norm (its statistics recomputed from ``resid``), then the unembedding."""
        if not self.is_transformer:
            raise ValueError(f"{self.name} takes images: it has no residual stream to unembed")
        ln = getattr(self.model, "ln_final", None)
        shape = resid.shape
        x = resid.reshape(1, -1, shape[-1])  # the norm expects [batch, pos, d]
        if ln is not None and self.normalization is not None:
            x = ln(x)
        # x @ W_U + b_U as the unembedding computes it, without its per-call copy of W_U.T
        w_u, b_u = self.weight("W_U"), self.weight("b_U")
        return torch.addmm(b_u, x.reshape(-1, shape[-1]), w_u).reshape(*shape[:-1], -1)

    def token_embedding(self) -> nn.Module:
        """The module that maps token ids to their embeddings (``[batch, pos, d_model]``):
        the layer gradient methods such as captum's ``LayerIntegratedGradients`` attribute to."""
        if not self.is_transformer:
            raise ValueError(f"{self.name} takes images: it has no token embedding")
        return self.model.embed  # type: ignore[return-value]

    def to_single_token(self, text: str) -> int:
        """The id of a token written as text (``" Mary"``: from the vocab, else the tokenizer);
        the text must be exactly one token."""
        if not isinstance(text, str):
            raise TypeError(f"a token is written as a string, got {type(text).__name__}")
        if self.vocab is not None:
            if text in self.vocab:
                return self.vocab.index(text)
            raise ValueError(
                f"{text!r} is not in the vocabulary of {self.name} (e.g. {list(self.vocab[:5])})"
            )
        tokenizer = self._need_tokenizer(f"the token {text!r}")
        ids = tokenizer.encode(text, add_special_tokens=False)
        if len(ids) != 1:
            pieces = [tokenizer.decode([i]) for i in ids]
            raise ValueError(
                f"{text!r} is {len(ids)} tokens for {self.name}, not one: {ids} ({pieces})"
            )
        return int(ids[0])

    def token_strings(self) -> tuple[str, ...]:
        """The display string of every output token id (decoded once, then kept)."""
        if self._token_strings is None:
            self._token_strings = tuple(self.to_str_tokens(torch.arange(self.n_outputs or 0)))
        return self._token_strings

    def to_tokens(self, text: str | Sequence[str]) -> torch.Tensor:
        """Token ids ``[batch, pos]`` of a prompt or a list of prompts (equal token lengths).

        The model's tokenizer decides; with ``prepend_bos`` (transformer-lens's default for
        the family: GPT-2, Llama, Mistral, Gemma yes; GPT-NeoX, Qwen2 no) a BOS token is put
        first when the tokenizer has one and did not add it itself.
        """
        tokenizer = self._need_tokenizer("text prompts")
        prompts = [text] if isinstance(text, str) else list(text)
        if not prompts or not _is_text(prompts):
            raise TypeError("text must be a string or a non-empty list of strings")
        rows = [list(tokenizer(p)["input_ids"]) for p in prompts]
        bos = getattr(tokenizer, "bos_token_id", None)
        causal = getattr(self.model.cfg, "attention_dir", "causal") == "causal"  # type: ignore[attr-defined]
        if self.prepend_bos and bos is not None and causal:
            rows = [r if r[:1] == [bos] else [bos, *r] for r in rows]
        lengths = sorted({len(r) for r in rows})
        if len(lengths) > 1:
            raise ValueError(
                f"the prompts have different token lengths {lengths}: analyses compare "
                "positions across a batch, so pass prompts of equal token length (or one prompt)"
            )
        return torch.tensor(rows, dtype=torch.long)

    def _need_tokenizer(self, what: str) -> Any:
        if not self.is_transformer:
            raise ValueError(f"{self.name} takes images, not {what}")
        tokenizer = self.tokenizer or getattr(self.model, "tokenizer", None)
        if tokenizer is None:
            raise ValueError(
                f"{self.name} has no tokenizer, so {what} cannot be read: give token ids, "
                "or load a Hugging Face folder holding tokenizer.json"
            )
        return tokenizer

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
        return other

    def parameters(self) -> Iterable[nn.Parameter]:
        return self.model.parameters()

    def train(self, mode: bool = True) -> ModelHandle:
        self.model.train(mode)
        return self

    def eval(self) -> ModelHandle:
        self.model.eval()
        return self


def _is_text(inputs: Any) -> bool:
    if isinstance(inputs, str):
        return True
    return (
        isinstance(inputs, (list, tuple))
        and bool(inputs)
        and all(isinstance(x, str) for x in inputs)
    )


class _TemporaryHooks:
    """``with``: add forward hooks ``[(name or name filter, fn(act, hook))]`` to hook points
    (through ``HookPoint.add_hook``, as transformer-lens does) and remove exactly those."""

    def __init__(
        self,
        hook_dict: dict[str, Any],
        fwd_hooks: Sequence[tuple[str | Callable[[str], bool], HookFn]],
    ) -> None:
        self._pairs = []
        for name, fn in fwd_hooks:
            if isinstance(name, str):
                self._pairs.append((hook_dict[name], fn))
            else:
                self._pairs += [(hp, fn) for n, hp in hook_dict.items() if name(n)]
        self._added: list[tuple[Any, Any]] = []

    def __enter__(self) -> _TemporaryHooks:
        try:
            for point, fn in self._pairs:
                point.add_hook(fn, dir="fwd")
                self._added.append((point, point.fwd_hooks[-1]))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for point, handle in reversed(self._added):
            handle.hook.remove()
            point.fwd_hooks = [h for h in point.fwd_hooks if h is not handle]
        self._added.clear()
