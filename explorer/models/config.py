"""Architecture configs for the models explorer builds itself.

A config is a frozen dataclass that round-trips through JSON, so a checkpoint folder
(``config.json`` + ``model.safetensors``) is enough to rebuild the model without pickle.
Every size is checked on construction (type, and a sane range, so a typo such as
``n_layers: 1000000`` fails at once instead of allocating for minutes), and
``weight_shapes()`` says which parameter tensors the model will have, so a checkpoint's
config can be checked against its weights file's header before anything is built.

>>> TransformerConfig(n_layers=1_000_000, d_model=64, n_heads=4, d_vocab=50, n_ctx=64)
Traceback (most recent call last):
...
ValueError: n_layers 1000000 is out of range: explorer builds models with 1..512 layers
"""

from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from explorer._checks import check_choice, check_positive

ACT_FNS = ("relu", "gelu", "silu", "tanh")
# Upper bounds: far above any model explorer can usefully hold on one machine, far below a typo.
LIMITS = {
    "n_layers": (512, "layers"),
    "d_model": (65_536, "residual widths (d_model)"),
    "n_heads": (1_024, "heads per layer"),
    "d_head": (8_192, "head widths (d_head)"),
    "d_mlp": (262_144, "MLP widths (d_mlp)"),
    "d_vocab": (1_048_576, "vocabulary sizes (d_vocab)"),
    "d_vocab_out": (1_048_576, "output vocabulary sizes"),
    "n_ctx": (1_048_576, "context lengths (n_ctx)"),
    "hidden width": (1_048_576, "hidden widths"),
    "channel count": (65_536, "channel counts"),
    "n_classes": (1_048_576, "class counts"),
    "input size": (65_536, "input sizes per dimension"),
}
MAX_PARAMS = 100_000_000_000


def check_size(name: str, value: object) -> int:
    """A positive integer no larger than ``LIMITS[name]``."""
    check_positive(name, value)
    limit, what = LIMITS[name]
    if value > limit:  # type: ignore[operator]
        raise ValueError(
            f"{name} {value} is out of range: explorer builds models with 1..{limit} {what}"
        )
    return value  # type: ignore[return-value]


def _check_params(config: Any) -> None:
    n = sum(_numel(s) for s in config.weight_shapes().values())
    if n > MAX_PARAMS:
        raise ValueError(
            f"this {config.family} config describes {n:,} parameters ({n * 4 / 2**30:,.0f} GiB "
            f"in float32), more than explorer builds ({MAX_PARAMS:,}): check its sizes"
        )


def _numel(shape: tuple[int, ...]) -> int:
    out = 1
    for s in shape:
        out *= s
    return out


@dataclass(frozen=True)
class TransformerConfig:
    """A toy decoder-only transformer, built through transformer-lens.

    ``d_mlp=None`` makes it attention-only. ``vocab`` names the tokens for display.
    ``positional_embedding``: learned absolute positions (``"standard"``) or ``"rotary"``.

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
    positional_embedding: str = "standard"

    def __post_init__(self) -> None:
        for name in ("n_layers", "d_model", "n_heads", "d_vocab", "n_ctx"):
            check_size(name, getattr(self, name))
        for name in ("d_head", "d_mlp", "d_vocab_out"):
            if getattr(self, name) is not None:
                check_size(name, getattr(self, name))
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
        check_choice("positional_embedding", self.positional_embedding, ("standard", "rotary"))
        if self.vocab is not None:
            object.__setattr__(self, "vocab", tuple(str(t) for t in self.vocab))
            if len(self.vocab) != self.d_vocab:
                raise ValueError(f"vocab has {len(self.vocab)} names but d_vocab is {self.d_vocab}")
        if self.bos_token is not None and not 0 <= self.bos_token < self.d_vocab:
            raise ValueError(f"bos_token {self.bos_token} out of range 0..{self.d_vocab - 1}")
        _check_params(self)

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """The parameter tensors of the model this config builds (transformer-lens names)."""
        d, h, dh = self.d_model, self.n_heads, int(self.d_head)  # type: ignore[arg-type]
        out: dict[str, tuple[int, ...]] = {"embed.W_E": (self.d_vocab, d)}
        if self.positional_embedding == "standard":  # rotary positions have no weights
            out["pos_embed.W_pos"] = (self.n_ctx, d)
        ln = self.normalization == "LN"
        for i in range(self.n_layers):
            b = f"blocks.{i}."
            if ln:
                out.update({b + "ln1.w": (d,), b + "ln1.b": (d,)})
                if not self.attn_only:
                    out.update({b + "ln2.w": (d,), b + "ln2.b": (d,)})
            for m in "QKV":
                out[f"{b}attn.W_{m}"] = (h, d, dh)
                out[f"{b}attn.b_{m}"] = (h, dh)
            out.update({b + "attn.W_O": (h, dh, d), b + "attn.b_O": (d,)})
            if self.d_mlp is not None:
                m = self.d_mlp
                out.update({b + "mlp.W_in": (d, m), b + "mlp.b_in": (m,)})
                out.update({b + "mlp.W_out": (m, d), b + "mlp.b_out": (d,)})
        if ln:
            out.update({"ln_final.w": (d,), "ln_final.b": (d,)})
        n_out = self.d_vocab_out or self.d_vocab
        out.update({"unembed.W_U": (d, n_out), "unembed.b_U": (n_out,)})
        return out

    @property
    def attn_only(self) -> bool:
        return self.d_mlp is None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["vocab"] = list(self.vocab) if self.vocab is not None else None
        if self.positional_embedding == "standard":
            # written only when it is not the default, so configs saved before the field
            # existed still equal those of the same model now (a run resumes)
            del out["positional_embedding"]
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
        object.__setattr__(
            self, "input_shape", _check_sequence("input_shape", self.input_shape, "input size")
        )
        object.__setattr__(self, "hidden", _check_sequence("hidden", self.hidden, "hidden width"))
        check_size("n_classes", self.n_classes)
        _check_params(self)

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """The parameter tensors of the model this config builds (``module.{i}`` Linear layers)."""
        out: dict[str, tuple[int, ...]] = {}
        n_in = _numel(self.input_shape)
        for i, width in enumerate((*self.hidden, self.n_classes)):
            out[f"module.{1 + 2 * i}.weight"] = (width, n_in)
            out[f"module.{1 + 2 * i}.bias"] = (width,)
            n_in = width
        return out

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
        object.__setattr__(
            self, "input_shape", _check_sequence("input_shape", self.input_shape, "input size")
        )
        if len(self.input_shape) != 3:
            raise ValueError(
                f"a CNN's input_shape is (channels, height, width), got {self.input_shape}"
            )
        object.__setattr__(
            self, "channels", _check_sequence("channels", self.channels, "channel count")
        )
        check_size("n_classes", self.n_classes)
        _check_params(self)

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """The parameter tensors of the model this config builds (``module.{i}`` layers)."""
        out: dict[str, tuple[int, ...]] = {}
        c_in, h, w = self.input_shape
        for i, c_out in enumerate(self.channels):
            out[f"module.{3 * i}.weight"] = (c_out, c_in, 3, 3)
            out[f"module.{3 * i}.bias"] = (c_out,)
            c_in, h, w = c_out, h // 2, w // 2
        last = 3 * len(self.channels) + 1
        out[f"module.{last}.weight"] = (self.n_classes, c_in * h * w)
        out[f"module.{last}.bias"] = (self.n_classes,)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }


def _check_sequence(
    name: str, values: Any, each: str, allow_empty: bool = False
) -> tuple[int, ...]:
    """``values`` as a tuple of ints, each checked by ``check_size(each, ...)``."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a list of positive integers, got {values!r}")
    out = []
    for v in values:
        if not isinstance(v, bool) and hasattr(v, "__index__"):  # numpy and torch ints too
            v = operator.index(v)
        out.append(check_size(each, v))
    if not out and not allow_empty:
        raise ValueError(f"{name} must not be empty")
    if len(out) > LIMITS["n_layers"][0]:
        raise ValueError(f"{name} has {len(out)} entries: explorer builds up to 512")
    return tuple(out)


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
    missing = sorted(
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
    )
    if missing:
        raise ValueError(f"config for a {family} lacks {missing}")
    return cls(**kwargs)
