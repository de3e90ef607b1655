"""``ModelHandle``: the handle protocol's transformer-lens backend, and the hook-point base.

A ``ModelHandle`` wraps a transformer-lens ``HookedRootModule`` (a ``HookedTransformer``
or ``HookedEncoder``) and answers ``protocol.Handle``: hook names, passes with a cache or
with hooks (``fn(activation, hook) -> activation | None``), weights by name. The other
models whose hook points are ``HookPoint`` modules subclass it, each in its own module:
``light_handle.LightHandle`` (explorer's light transformer) and
``module_handle.ModuleHandle`` (a plain module). ``ModelHandle(model, ...)`` picks the
subclass for the model it is given; the nnsight backend (``_nnsight``) shares
``_handle_base.HandleBase`` only.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar

import torch
from torch import nn

from explorer._cancel import check_cancelled
from explorer._checks import check_index
from explorer.models import _tl
from explorer.models._handle_base import HandleBase, HookFn, InputKind
from explorer.models._handle_weights import LayerModules
from explorer.models._spent import Spent
from explorer.models._temporary_hooks import TemporaryHooks
from explorer.models.config import CNNConfig, MLPConfig, TransformerConfig

__all__ = ["HookFn", "InputKind", "LayerModules", "ModelHandle", "Spent", "TransformerLensHandle"]

Config = TransformerConfig | MLPConfig | CNNConfig


class ModelHandle(HandleBase):
    """A model with hook points and the facts explorer needs about it.

    Build one with ``explorer.load`` or a zoo builder, not directly.

    >>> from explorer.models import zoo
    >>> m = zoo.attention_only_transformer(n_layers=2, d_model=32, n_heads=4, d_vocab=20, n_ctx=16)
    >>> m.kind, m.n_layers, m.n_heads
    ('tokens', 2, 4)
    >>> m.hook_name("pattern", 1)
    'blocks.1.attn.hook_pattern'
    """

    # (accepts(model), subclass): the hook-point backends, registered by their modules
    _backends: ClassVar[list[tuple[Callable[[Any], bool], type]]] = []

    def __init_subclass__(cls, accepts: Callable[[Any], bool] | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if accepts is not None:
            ModelHandle._backends.append((accepts, cls))

    def __new__(cls, model: Any = None, *args: Any, **kwargs: Any) -> ModelHandle:
        if cls is ModelHandle:  # the backend for this model (light, plain module)
            for accepts, backend in ModelHandle._backends:
                if accepts(model):
                    return super().__new__(backend)
        return super().__new__(cls)

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
        super().__init__(
            model,
            kind=kind,
            config=config,
            input_shape=input_shape,
            vocab=vocab,
            name=name,
            tokenizer=tokenizer,
            family=family,
            image_shape=image_shape,
        )

    # ----------------------------------------------------------------- structure
    @property
    def cfg(self) -> Any:
        """transformer-lens's config of the model (None for a plain module)."""
        return getattr(self.model, "cfg", None)

    def _hook_table(self) -> Mapping[str, Any]:
        return self.model.hook_dict  # type: ignore[no-any-return]

    @property
    def runs_from_layer(self) -> bool:
        """Whether a forward pass can start at a block from a residual stream
        (``model(resid, start_at_layer=l)``): decoders yes; BERT's encoder has no such entry."""
        return self.is_transformer and _tl.is_hooked_transformer(self.model)

    @property
    def stops_early(self) -> bool:
        """Whether a forward pass can stop after a layer (``stop_at_layer``): decoder
        transformers (``HookedTransformer``), not encoders or plain modules."""
        forward = getattr(self.model, "forward", None)
        return self.is_transformer and "stop_at_layer" in inspect.signature(forward).parameters

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

    def hooks(
        self, fwd_hooks: Sequence[tuple[str | Callable[[str], bool], HookFn]]
    ) -> AbstractContextManager[Any]:
        """Context manager that adds hooks and removes them on exit, even after an error.

        Only the hooks added here are removed, touching only their hook points (not every
        hook point of the model, as transformer-lens's ``hooks`` does: on a 12-layer model
        that walk cost more than a small sweep's own work).
        """
        return TemporaryHooks(self.model.hook_dict, fwd_hooks)  # type: ignore[attr-defined]

    def _mask_kwargs(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """The keyword that hands a padded batch's mask to the model (none when unpadded)."""
        mask = self.attention_mask(tokens)
        if mask is None:
            return {}
        if _tl.is_hooked_transformer(self.model):
            return {"attention_mask": mask}
        if _tl.is_hooked_encoder(self.model):
            return {"one_zero_attention_mask": mask}
        raise ValueError(
            f"{self.name} ({type(self.model).__name__}) takes no attention mask: pass prompts "
            "of equal token length"
        )

    # ----------------------------------------------------------- identity
    def copy(self) -> ModelHandle:
        """An independent copy (its own weights and hooks)."""
        return self._same(copy.deepcopy(self.model))

    def _same(self, model: nn.Module) -> ModelHandle:
        """A handle of this class and fields around ``model``."""
        other = type(self)(
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
        self._copy_fields(other)
        return other


# the name says which backend it is; ``ModelHandle`` stays for users' code
TransformerLensHandle = ModelHandle
