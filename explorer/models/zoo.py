"""Builders for the tutorial models: seeded, small, and trainable on a laptop CPU.

(``build``, ``transformer``, ``build_mlp`` and ``build_cnn`` live in ``builders``; they are
named here too, where the tutorials look for them.)
"""

from __future__ import annotations

from collections.abc import Sequence

from explorer.models.builders import build, build_cnn, build_mlp, transformer, wrap
from explorer.models.config import CNNConfig, MLPConfig, TransformerConfig
from explorer.models.handle import ModelHandle
from explorer.models.shipped import load_shipped

__all__ = [
    "attention_only_transformer",
    "build",
    "build_cnn",
    "build_mlp",
    "mnist_cnn",
    "mnist_mlp",
    "modular_addition_transformer",
    "trained_induction",
    "trained_mnist_mlp",
    "transformer",
]


def modular_addition_transformer(p: int = 113, *, seed: int = 0, d_model: int = 128) -> ModelHandle:
    """The grokking model of Nanda et al. 2023: 1 layer, 4 heads, d_mlp 512, ReLU, no LayerNorm.

    Tokens ``0..p-1`` are numbers and ``p`` is "="; the answer is read at the last position.

    >>> m = modular_addition_transformer(p=7)
    >>> m.n_layers, m.n_heads, m.d_mlp, m.vocab[-1]
    (1, 4, 512, '=')
    """
    cfg = TransformerConfig(
        n_layers=1,
        d_model=d_model,
        n_heads=4,
        d_mlp=4 * d_model,
        d_vocab=p + 1,
        d_vocab_out=p,
        n_ctx=3,
        act_fn="relu",
        normalization=None,
        vocab=tuple(str(i) for i in range(p)) + ("=",),
        seed=seed,
    )
    return transformer(cfg, name=f"modular-addition-p{p}")


def attention_only_transformer(
    n_layers: int = 2,
    *,
    d_model: int = 64,
    n_heads: int = 4,
    d_head: int | None = None,
    d_vocab: int = 64,
    n_ctx: int = 64,
    seed: int = 0,
    normalization: str | None = "LN",
) -> ModelHandle:
    """An attention-only transformer (Elhage et al. 2021); token 0 is BOS.

    ``d_head`` defaults to ``d_model // n_heads``; pass it when ``n_heads`` does not
    divide ``d_model``, or for heads wider or narrower than that.

    >>> attention_only_transformer(d_model=30, n_heads=4, d_head=8).d_head
    8
    """
    cfg = TransformerConfig(
        n_layers=n_layers,
        d_model=d_model,
        n_heads=n_heads,
        d_head=d_head,
        d_vocab=d_vocab,
        n_ctx=n_ctx,
        normalization=normalization,
        vocab=("BOS",) + tuple(f"t{i}" for i in range(1, d_vocab)),
        bos_token=0,
        seed=seed,
    )
    return transformer(cfg, name=f"attn-only-{n_layers}L")


def mnist_mlp(
    hidden: Sequence[int] = (128, 64), *, seed: int = 0, input_shape=(1, 28, 28)
) -> ModelHandle:
    """A plain PyTorch MLP for MNIST, opened with hook points (``blocks.{i}.mlp.hook_post``)."""
    cfg = MLPConfig(input_shape=tuple(input_shape), hidden=tuple(hidden), seed=seed)
    return wrap(build_mlp(cfg), input_shape=cfg.input_shape, config=cfg, name="mnist-mlp")


def mnist_cnn(
    channels: Sequence[int] = (8, 16), *, seed: int = 0, input_shape=(1, 28, 28)
) -> ModelHandle:
    """A small PyTorch CNN for MNIST; units of ``blocks.{i}.mlp.hook_post`` are channels."""
    cfg = CNNConfig(input_shape=tuple(input_shape), channels=tuple(channels), seed=seed)
    return wrap(build_cnn(cfg), input_shape=cfg.input_shape, config=cfg, name="mnist-cnn")


def trained_induction() -> ModelHandle:
    """The quickstart's 2-layer attention-only transformer, trained (shipped, offline).

    Trained for 2,000 steps on sequences with a repeated span; layer 1 holds induction heads
    and layer 0 a previous-token head. Rebuild: ``python -m explorer.studies.shipped``.

    >>> model = trained_induction()
    >>> model.n_layers, model.n_heads, model.d_vocab
    (2, 4, 64)
    """
    return load_shipped("quickstart-induction")


def trained_mnist_mlp() -> ModelHandle:
    """The quickstart's MNIST MLP (784-64-32-10), trained on the 5,000 offline digits (shipped).

    >>> trained_mnist_mlp().layer_widths
    (64, 32)
    """
    return load_shipped("quickstart-mnist-mlp")
