"""The only place that imports transformer-lens: our adapter over its moving API.

We build on transformer-lens 3.9 (``HookedTransformer``), not 4.x (``TransformerBridge``):
see docs/transformer_lens.md. Everything else in explorer asks this module for hook
points, root modules and toy transformers, so an upstream change stops here.
The import is lazy because transformer-lens pulls in ``transformers`` (seconds).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from explorer.models.config import TransformerConfig
from explorer.models.light_hooks import act_name as light_act_name


def hook_point_classes() -> tuple[type[nn.Module], type[nn.Module]]:
    """Return transformer-lens's ``(HookPoint, HookedRootModule)`` classes."""
    # lazy: only wrapping a plain nn.Module (wrap_module) needs the hook point classes
    from transformer_lens import HookedRootModule
    from transformer_lens.hook_points import HookPoint

    return HookPoint, HookedRootModule


def act_name(kind: str, layer: int | None = None) -> str:
    """Canonical transformer-lens hook name, e.g. ``act_name("pattern", 0)``: transformer-lens's
    ``get_act_name`` rewritten in ``light_hooks`` (no import; tests/models/test_light.py compares)."""
    return light_act_name(kind, layer)


def build_transformer(cfg: TransformerConfig) -> nn.Module:
    """A ``HookedTransformer`` from our config, seeded so everyone gets the same weights."""
    # lazy: only building a toy transformer needs the model class and its config
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    tl_cfg = HookedTransformerConfig(
        n_layers=cfg.n_layers,
        d_model=cfg.d_model,
        n_heads=cfg.n_heads,
        d_head=cfg.d_head,
        d_mlp=cfg.d_mlp,
        d_vocab=cfg.d_vocab,
        d_vocab_out=cfg.d_vocab_out or cfg.d_vocab,
        n_ctx=cfg.n_ctx,
        act_fn=cfg.act_fn,
        attn_only=cfg.attn_only,
        normalization_type=cfg.normalization,
        positional_embedding_type=cfg.positional_embedding,
        default_prepend_bos=False,
        seed=cfg.seed,
        device="cpu",
    )
    model = HookedTransformer(tl_cfg)
    model.eval()
    return model


def is_hooked_transformer(model: object) -> bool:
    if "transformer_lens" not in type(model).__module__:
        return False
    # lazy: reached only for objects whose class comes from transformer_lens (checked above)
    from transformer_lens import HookedTransformer

    return isinstance(model, HookedTransformer)


def is_hooked_encoder(model: object) -> bool:
    if "transformer_lens" not in type(model).__module__:
        return False
    # lazy: reached only for objects whose class comes from transformer_lens, like the line above
    from transformer_lens import HookedEncoder

    return isinstance(model, HookedEncoder)


def config_of(model: nn.Module) -> TransformerConfig:
    """Our config mirror of a HookedTransformer's (for display and validation)."""
    c: Any = model.cfg  # type: ignore[attr-defined]
    return TransformerConfig(
        n_layers=c.n_layers,
        d_model=c.d_model,
        n_heads=c.n_heads,
        d_head=c.d_head,
        d_mlp=None if c.attn_only else c.d_mlp,
        d_vocab=c.d_vocab,
        d_vocab_out=c.d_vocab_out,
        n_ctx=c.n_ctx,
        act_fn=c.act_fn if c.act_fn in ("relu", "gelu", "silu", "tanh") else "gelu",
        normalization=c.normalization_type if c.normalization_type == "LN" else None,
        seed=c.seed or 0,
        positional_embedding="rotary" if c.positional_embedding_type == "rotary" else "standard",
    )


def official_name(name: str) -> str:
    """The Hub name transformer-lens knows ``name`` by (aliases resolved; nothing fetched)."""
    # lazy: only a Hub name (not a folder or module) is resolved through its alias table
    from transformer_lens.loading_from_pretrained import get_official_model_name

    try:
        return get_official_model_name(name)
    except ValueError:
        raise ValueError(
            f"{name!r} is neither a path to an explorer checkpoint nor a model transformer-lens "
            "knows; pass a folder saved by explorer or by Hugging Face's save_pretrained, an "
            "nn.Module, a TransformerConfig, or an official name such as 'gpt2' or "
            "'EleutherAI/pythia-70m'"
        ) from None


def refuse_remote_code(official: str) -> None:
    """Refuse a Hub model transformer-lens loads with ``trust_remote_code=True``.

    >>> refuse_remote_code("gpt2")
    >>> refuse_remote_code("microsoft/phi-2")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: transformer-lens loads 'microsoft/phi-2' with trust_remote_code=True ...
    """
    # lazy: the remote-code list is read only when a Hub name is about to be loaded
    from transformer_lens.loading_from_pretrained import NEED_REMOTE_CODE_MODELS

    if official.startswith(NEED_REMOTE_CODE_MODELS):
        raise ValueError(
            f"transformer-lens loads {official!r} with trust_remote_code=True (it runs Python "
            "code from the model's repository), and explorer never runs a repository's code. "
            "Where transformers itself defines the architecture, save the model with "
            "save_pretrained and pass the folder: "
            f"explorer.load('/path/to/{official.split('/')[-1]}')"
        )


def from_pretrained(name: str) -> nn.Module:
    """A Hugging Face model by its Hub name, through transformer-lens (needs internet)."""
    # lazy: loading from the Hub (internet) is the rarest path; it pays the import itself
    from transformer_lens import HookedTransformer

    official = official_name(name)
    refuse_remote_code(official)
    try:
        # trust_remote_code=False: transformers never imports a repository's own code
        model = HookedTransformer.from_pretrained(official, device="cpu", trust_remote_code=False)
    except (OSError, ConnectionError, TimeoutError) as err:
        raise OSError(
            f"the weights of {official!r} cannot be downloaded here ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else 'no network'}). Without internet, "
            f"save the model with save_pretrained elsewhere and pass the folder: "
            f"explorer.load('/path/to/{official.split('/')[-1]}')"
        ) from err
    model.eval()
    return model
