"""Architecture configs for the models explorer builds itself.

A config is a frozen dataclass that round-trips through JSON, so a checkpoint folder
(``config.json`` + ``model.safetensors``) is enough to rebuild the model without pickle.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from explorer._checks import check_choice, check_positive

ACT_FNS = ("relu", "gelu", "silu", "tanh")


@dataclass(frozen=True)
class TransformerConfig:
    """A toy decoder-only transformer, built through transformer-lens.

    ``d_mlp=None`` makes it attention-only. ``vocab`` names the tokens for display.

    >>> cfg = TransformerConfig(n_layers=2, d_model=64, n_heads=4, d_vocab=50, n_ctx=64)
    >>> cfg.d_head, cfg.attn_only
    (16, True)
    """

    family: ClassVar[str] = "transformer"
    n_layers: int
    d_model: int
    n_heads: int
    d_vocab: int
    n_ctx: int
    d_head: int | None = None
    d_mlp: int | None = None
    d_vocab_out: int | None = None
    act_fn: str = "relu"
    normalization: str | None = None
    vocab: tuple[str, ...] | None = None
    bos_token: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_layers", "d_model", "n_heads", "d_vocab", "n_ctx"):
            check_positive(name, getattr(self, name))
        if self.d_head is None:
            if self.d_model % self.n_heads:
                raise ValueError(
                    f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}: "
                    "pass d_head explicitly"
                )
            object.__setattr__(self, "d_head", self.d_model // self.n_heads)
        if self.d_mlp is not None:
            check_positive("d_mlp", self.d_mlp)
        check_choice("act_fn", self.act_fn, ACT_FNS)
        check_choice("normalization", self.normalization, (None, "LN"))  # type: ignore[arg-type]
        if self.vocab is not None:
            object.__setattr__(self, "vocab", tuple(str(t) for t in self.vocab))
            if len(self.vocab) != self.d_vocab:
                raise ValueError(f"vocab has {len(self.vocab)} names but d_vocab is {self.d_vocab}")
        if self.bos_token is not None and not 0 <= self.bos_token < self.d_vocab:
            raise ValueError(f"bos_token {self.bos_token} out of range 0..{self.d_vocab - 1}")

    @property
    def attn_only(self) -> bool:
        return self.d_mlp is None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["vocab"] = list(self.vocab) if self.vocab is not None else None
        return out


@dataclass(frozen=True)
class MLPConfig:
    """A plain multilayer perceptron classifier: Flatten -> (Linear, ReLU)* -> Linear."""

    family: ClassVar[str] = "mlp"
    input_shape: tuple[int, ...] = (1, 28, 28)
    hidden: tuple[int, ...] = (128, 64)
    n_classes: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        for h in self.hidden:
            check_positive("hidden width", h)
        check_positive("n_classes", self.n_classes)

    def to_dict(self) -> dict[str, Any]:
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }


@dataclass(frozen=True)
class CNNConfig:
    """A small convolutional classifier: (Conv3x3, ReLU, MaxPool2)* -> Flatten -> Linear."""

    family: ClassVar[str] = "cnn"
    input_shape: tuple[int, ...] = (1, 28, 28)
    channels: tuple[int, ...] = (8, 16)
    n_classes: int = 10
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        for c in self.channels:
            check_positive("channel count", c)
        check_positive("n_classes", self.n_classes)

    def to_dict(self) -> dict[str, Any]:
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }


CONFIG_TYPES: dict[str, type] = {
    c.family: c
    for c in (TransformerConfig, MLPConfig, CNNConfig)  # type: ignore[attr-defined]
}


def config_from_dict(
    family: str, data: dict[str, Any]
) -> TransformerConfig | MLPConfig | CNNConfig:
    """Rebuild a config saved by ``to_dict``; unknown families or fields raise ValueError."""
    check_choice("model family", family, tuple(CONFIG_TYPES))
    cls = CONFIG_TYPES[family]
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(
            f"config for a {family} has unknown fields {sorted(unknown)}; known: {sorted(names)}"
        )
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**kwargs)
