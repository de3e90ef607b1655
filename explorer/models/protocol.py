"""``Handle``: the protocol analysis programs against, whatever runs the model.

Analysis, hypotheses, studies and views ask a handle their questions and never look inside
the model: no torch module, no module weights, no backend parameter names (W_Q, "blocks.0.
attn.W_Q", ...). tests/test_architecture.py holds everything outside ``explorer/models/``
to that. The backends implement it, each in its own module:

- ``handle.ModelHandle``: a transformer-lens ``HookedRootModule`` (``HookedTransformer``,
  ``HookedEncoder``);
- ``light_handle.LightHandle``: explorer's own ``light.LightTransformer`` (no
  transformer-lens import);
- ``module_handle.ModuleHandle``: any plain ``nn.Module``, its hidden layers found from
  its traced graph (``hooked_module``);
- ``_nnsight.NNsightHandle``: a Hugging Face model run as nnsight traces, here or on an
  NDIF server.

Shared behaviour (inputs, checks, counting, identity) is ``_handle_base.HandleBase``.
Hook names are transformer-lens's (``blocks.{layer}.attn.hook_z``): the one vocabulary of
activation sites, which each backend maps onto its own model. Weights have backend-neutral
names (``WEIGHT_NAMES``: ``"unembed"``, ``"query"``, ``"mlp_out"``, ...).

Backend policy lives behind the protocol: ``run_sweep(inputs, plan)`` decides how copies
of a batch are chunked, where they fan out, and what crosses the wire to a remote server
(``sweeps``); ``shape_only`` makes the one-element stand-in a remote pass sends back
instead of a tensor the caller only needs the shape of.

>>> from explorer.models import zoo
>>> isinstance(zoo.mnist_mlp(hidden=(4,)), Handle)
True
>>> sorted(set(WEIGHT_NAMES) - {"embed", "pos_embed"})[:3]
['attn_out', 'attn_out_bias', 'key']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import torch
from torch import nn

from explorer.models._handle_weights import WEIGHT_NAMES

if TYPE_CHECKING:
    from explorer.models._spent import Spent
    from explorer.models.sweeps import SweepPlan

__all__ = ["WEIGHT_NAMES", "Handle"]

HookFn = Callable[..., Any]
Hooks = Sequence[tuple[str | Callable[[str], bool], HookFn]]


@runtime_checkable
class Handle(Protocol):
    """What every backend answers. Structure: ``kind`` (``"tokens"`` / ``"images"``),
    ``n_layers``, ``n_heads``, ``d_model``, ``d_head``, ``d_mlp``, ``d_vocab``, ``n_ctx``,
    ``layer_widths``, ``n_outputs``, ``has_mlp``; capabilities: ``stops_early``,
    ``runs_from_layer``, ``returns_gradients``."""

    kind: Literal["tokens", "images"]
    name: str
    spent: Spent
    config: Any  # the explorer config it was built from (``TransformerConfig``, ...), if any
    vocab: tuple[str, ...] | None
    tokenizer: Any | None
    family: str | None
    input_shape: tuple[int, ...] | None  # what a pass takes after the batch axis (images)
    image_shape: tuple[int, ...] | None  # (C, H, W) that image tools work on

    # ---------------------------------------------------------------- structure
    @property
    def is_transformer(self) -> bool: ...
    @property
    def n_layers(self) -> int: ...
    @property
    def n_heads(self) -> int | None: ...
    @property
    def d_model(self) -> int | None: ...
    @property
    def d_head(self) -> int | None: ...
    @property
    def d_mlp(self) -> int | None: ...
    @property
    def d_vocab(self) -> int | None: ...
    @property
    def n_ctx(self) -> int | None: ...
    @property
    def has_mlp(self) -> bool: ...
    @property
    def layer_widths(self) -> tuple[int, ...]: ...
    @property
    def n_outputs(self) -> int | None: ...
    @property
    def hook_names(self) -> list[str]: ...
    @property
    def stops_early(self) -> bool: ...
    @property
    def runs_from_layer(self) -> bool: ...
    @property
    def returns_gradients(self) -> bool: ...

    # ------------------------------------------------------------------- checks
    def check_layer(self, layer: int) -> int: ...
    def check_head(self, layer: int, head: int) -> tuple[int, int]: ...
    def check_neuron(self, layer: int, neuron: int) -> tuple[int, int]: ...
    def check_hook(self, name: str) -> str: ...
    def hook_name(self, kind: str, layer: int | None = None) -> str: ...
    def check_inputs(self, inputs: Any) -> torch.Tensor: ...
    def check_images(self, inputs: Any) -> torch.Tensor: ...

    # ------------------------------------------------------------------- inputs
    def to_inputs(self, images: torch.Tensor) -> torch.Tensor: ...
    def to_tokens(
        self, text: str | Sequence[str], *, padding_side: str | None = None
    ) -> torch.Tensor: ...
    def to_str_tokens(self, tokens: torch.Tensor | Sequence[int]) -> list[str]: ...
    def to_single_token(self, text: str) -> int: ...
    def token_strings(self) -> tuple[str, ...]: ...
    def attention_mask(self, tokens: torch.Tensor) -> torch.Tensor | None: ...
    def last_positions(self, tokens: Any) -> torch.Tensor: ...
    def token_positions(self, tokens: Any, token: str | int) -> torch.Tensor: ...

    # ------------------------------------------------------------------ running
    def __call__(self, inputs: torch.Tensor) -> torch.Tensor: ...
    def add_pass_guard(self, guard: Callable[[int], None]) -> Callable[[], None]: ...
    def run_with_hooks(
        self, inputs: torch.Tensor, fwd_hooks: Hooks, *, stop_at_layer: int | None = None
    ) -> torch.Tensor: ...
    def cache_pass(
        self,
        inputs: torch.Tensor,
        names: str | Iterable[str] | None = None,
        *,
        stop_at_layer: int | None = None,
        fwd_hooks: Hooks = (),
        select: Callable[[str, torch.Tensor], torch.Tensor] | None = None,
        reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...
    def run_reduced(
        self,
        inputs: torch.Tensor,
        fwd_hooks: Hooks,
        reduce: Callable[[torch.Tensor], torch.Tensor],
    ) -> torch.Tensor: ...
    def hooks(self, fwd_hooks: Hooks) -> AbstractContextManager[Any]: ...
    def last_position_logits(self, inputs: torch.Tensor) -> torch.Tensor: ...
    def run_sweep(self, inputs: torch.Tensor, plan: SweepPlan) -> torch.Tensor: ...
    def sweep_bases(self, hooks: Sequence[str]) -> list[str]: ...
    def sweep_reads(self, hooks: Sequence[str]) -> set[str]: ...
    def shape_only(self, act: torch.Tensor) -> torch.Tensor: ...

    # ------------------------------------------------------------------ weights
    def weight(self, name: str, layer: int | None = None) -> torch.Tensor: ...
    def set_weight(
        self, name: str, value: torch.Tensor, layer: int | None = None, *, head: int | None = None
    ) -> None: ...
    def final_norm(self) -> tuple[str | None, torch.Tensor | None, torch.Tensor | None]: ...
    def block_norm(
        self, layer: int, which: str = "ln1"
    ) -> tuple[str | None, torch.Tensor | None, torch.Tensor | None]: ...
    def resid_to_logits(self, resid: torch.Tensor) -> torch.Tensor: ...
    def unit_weights(self, layer: int, neuron: int, direction: str) -> torch.Tensor: ...
    def unit_weight_masks(
        self, layer: int, neurons: Sequence[int], weights: str
    ) -> dict[nn.Parameter, torch.Tensor]: ...
    def set_unit_weights(
        self,
        layer: int,
        neuron: int,
        *,
        incoming: torch.Tensor | None = None,
        bias: float | None = None,
        outgoing: torch.Tensor | None = None,
    ) -> None: ...
    @property
    def kv_hook_heads(self) -> int | None: ...
    @property
    def normalization(self) -> str | None: ...
    @property
    def dtype(self) -> torch.dtype: ...
    def parameters(self) -> Iterable[nn.Parameter]: ...
    def named_parameters(self) -> Iterable[tuple[str, nn.Parameter]]: ...

    # ----------------------------------------------------------------- training
    @property
    def training(self) -> bool: ...
    def train(self, mode: bool = True) -> Handle: ...
    def eval(self) -> Handle: ...
    def zero_grad(self) -> None: ...
    def reset_parameters(self, seed: int = 0) -> None: ...

    # ----------------------------------------------------------------- identity
    def fingerprint(self) -> str: ...
    def weights_version(self) -> int: ...
    def copy(self) -> Handle: ...

    # ------------------------------------- a torch module, for captum (attribution)
    def as_torch_module(self) -> nn.Module: ...
    def token_embedding(self) -> nn.Module: ...


def _backends() -> Mapping[str, str]:
    """Which module implements the protocol for which kind of model.

    >>> _backends()["nnsight"]
    'explorer.models._nnsight.NNsightHandle'
    """
    return {
        "transformer-lens": "explorer.models.handle.ModelHandle",
        "light": "explorer.models.light_handle.LightHandle",
        "plain module": "explorer.models.module_handle.ModuleHandle",
        "nnsight": "explorer.models._nnsight.NNsightHandle",
    }
