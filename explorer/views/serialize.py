"""The one way tensors reach the browser: compact binary buffers with their dtype and shape.

A payload is a plain dict ``{"dtype": "float16" | "uint8" | "float32" | "int32",
"shape": [...], "data": bytes, ...}``. ipywidgets lifts every ``bytes`` value out of the
widget state and sends it as a binary buffer (no JSON, no base64); the front end receives it
as a ``DataView`` and ``decode`` in ``_common.js`` turns it back into a typed array. Never
``.tolist()`` a tensor of any size: a 12-head, 1,024-token attention layer is 25 MB as
float16 and ~280 MB as JSON numbers.

``uint8`` payloads carry ``lo``/``hi`` so that ``value = lo + byte / 255 * (hi - lo)``
(used for images and heatmap thumbnails where 1/255 of the range is plenty).

A view declares such a trait once, ``values = Tensor("float32", help=...)``, and assigns it
tensors or arrays: the trait encodes them (its dtype, and ``lo``/``hi`` for ``uint8``) and its
``to_json`` serializer hands ipywidgets the payload, whose bytes travel as a buffer. Reading
the trait gives a ``Payload``: the payload's fields (``view.values["shape"]``) and the array
back (``view.values.numpy()``, ``np.asarray(view.values)``, ``view.values.tensor()``).

Long sequences are shown through a window: ``query_window`` picks the rows a view sends.

>>> import torch
>>> p = encode(torch.tensor([[0.25, 0.5], [1.0, -2.0]]))
>>> p["dtype"], p["shape"], len(p["data"])
('float16', [2, 2], 8)
>>> decode(p).tolist()
[[0.25, 0.5], [1.0, -2.0]]
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any

import numpy as np
import torch
import traitlets

DTYPES = ("float16", "uint8", "float32", "int32")
_NUMPY = {"float16": np.float16, "uint8": np.uint8, "float32": np.float32, "int32": np.int32}
FLOAT16_MAX = 65504.0


def encode(
    values: torch.Tensor | np.ndarray,
    dtype: str = "float16",
    *,
    lo: float | None = None,
    hi: float | None = None,
) -> dict[str, Any]:
    """Serialise an array for the browser (see the module docstring for the payload).

    Args:
        values: any real tensor or array; it is detached and moved to the CPU.
        dtype: ``"float16"`` (default), ``"uint8"`` (quantised between ``lo`` and ``hi``,
            which default to the array's min and max), ``"float32"`` or ``"int32"``.
        lo, hi: the range a ``uint8`` payload spans.
    """
    if dtype not in DTYPES:
        raise ValueError(f"unknown payload dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    array = _as_numpy(values)
    payload: dict[str, Any] = {"dtype": dtype, "shape": list(array.shape)}
    if dtype == "uint8":
        finite = array[np.isfinite(array)]
        if lo is None:
            lo = float(finite.min()) if finite.size else 0.0
        if hi is None:
            hi = float(finite.max()) if finite.size else 1.0
        lo, hi = float(lo), float(hi)
        span = hi - lo if hi > lo else 1.0
        scaled = np.nan_to_num((array - lo) / span, nan=0.0, posinf=1.0, neginf=0.0)
        data = np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8)
        payload.update(lo=lo, hi=hi)
    elif dtype == "float16":
        # Clip rather than overflow to inf: a logit of 1e5 should still draw as "large".
        data = np.clip(array, -FLOAT16_MAX, FLOAT16_MAX).astype(np.float16)
    else:
        data = array.astype(_NUMPY[dtype])
    payload["data"] = np.ascontiguousarray(data).tobytes()
    return payload


def decode(payload: Mapping[str, Any]) -> np.ndarray:
    """Read a payload back into a numpy array (float32 for float payloads)."""
    if not isinstance(payload, Mapping) or not {"dtype", "shape", "data"} <= payload.keys():
        raise ValueError("a payload is a dict with 'dtype', 'shape' and 'data'")
    dtype = payload["dtype"]
    if dtype not in DTYPES:
        raise ValueError(f"unknown payload dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    raw = np.frombuffer(bytes(payload["data"]), dtype=_NUMPY[dtype]).reshape(payload["shape"])
    if dtype == "uint8" and "lo" in payload:
        lo, hi = float(payload["lo"]), float(payload["hi"])
        return (lo + raw.astype(np.float32) / 255.0 * (hi - lo)).astype(np.float32)
    return raw.astype(np.float32) if dtype == "float16" else raw.copy()


class Payload(Mapping[str, Any]):
    """A tensor as a view sends it: the payload's fields, and the array read back.

    >>> p = Payload(encode(torch.tensor([1.0, 2.0]), "float32"))
    >>> p["shape"], p.numpy().tolist(), p
    ([2], [1.0, 2.0], Payload(float32 [2], 8 bytes))
    """

    __slots__ = ("_fields",)

    def __init__(self, fields: Mapping[str, Any]) -> None:
        if not isinstance(fields, Mapping) or not {"dtype", "shape", "data"} <= fields.keys():
            raise ValueError("a payload is a dict with 'dtype', 'shape' and 'data'")
        if fields["dtype"] not in DTYPES:
            raise ValueError(
                f"unknown payload dtype {fields['dtype']!r}: choose one of {', '.join(DTYPES)}"
            )
        self._fields = dict(fields)

    def __getitem__(self, key: str) -> Any:
        return self._fields[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._fields["shape"])

    def numpy(self) -> np.ndarray:
        """The values (float32 for float16 and quantised uint8 payloads)."""
        return decode(self._fields)

    def tensor(self) -> torch.Tensor:
        return torch.from_numpy(self.numpy())

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = self.numpy()
        return array if dtype is None else array.astype(dtype)

    def __repr__(self) -> str:
        return f"Payload({self['dtype']} {list(self.shape)}, {payload_bytes(self)} bytes)"


class Tensor(traitlets.TraitType[Payload, Any]):
    """A synced trait holding a tensor, sent to the page as a binary buffer.

    Assign a ``torch.Tensor`` or numpy array (encoded with the trait's ``dtype``, and
    ``lo``/``hi`` for ``uint8``), a payload from ``encode`` or None (empty). It reads back
    as a ``Payload``.

    >>> class View(traitlets.HasTraits):
    ...     values = Tensor("float32", help="[rows, cols]")
    >>> v = View()
    >>> v.values = torch.ones(2, 3)
    >>> v.values["shape"], float(v.values.numpy().sum())
    ([2, 3], 6.0)
    """

    info_text = "a torch.Tensor, a numpy array, an encode() payload or None"

    def __init__(
        self,
        dtype: str = "float16",
        *,
        lo: float | None = None,
        hi: float | None = None,
        help: str = "",
    ) -> None:
        if dtype not in DTYPES:
            raise ValueError(f"unknown payload dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
        self.dtype, self.lo, self.hi = dtype, lo, hi
        super().__init__(Payload(empty(dtype)), help=help)
        self.tag(sync=True, to_json=_payload_to_json, from_json=_payload_from_json)

    def validate(self, obj: Any, value: Any) -> Payload:
        if value is None:
            return Payload(empty(self.dtype))
        if isinstance(value, Payload):
            return value
        if isinstance(value, Mapping):
            return Payload(value)
        if isinstance(value, (torch.Tensor, np.ndarray)):
            return Payload(encode(value, self.dtype, lo=self.lo, hi=self.hi))
        self.error(obj, value)


def _payload_to_json(value: Payload, _widget: Any) -> dict[str, Any]:
    return dict(value)  # ipywidgets lifts the bytes out as a binary buffer


def _payload_from_json(value: Any, _widget: Any) -> Payload:
    fields = dict(value)
    data = fields.get("data", b"")
    fields["data"] = data.tobytes() if isinstance(data, memoryview) else bytes(data)
    return Payload(fields)


def empty(dtype: str = "float16") -> dict[str, Any]:
    """A payload with no data: the initial value of every tensor trait."""
    return {"dtype": dtype, "shape": [0], "data": b""}


def payload_bytes(payload: Mapping[str, Any]) -> int:
    """Bytes a payload puts on the wire (its binary buffer)."""
    return len(payload.get("data", b""))


def query_window(n_queries: int, start: int, size: int) -> tuple[int, int]:
    """The ``[start, stop)`` rows shown of ``n_queries``, ``size`` at most, kept in range.

    >>> query_window(1024, 1000, 256)
    (768, 1024)
    >>> query_window(20, 5, 256)
    (0, 20)
    """
    if size <= 0:
        raise ValueError(f"window size must be positive, got {size}")
    if n_queries <= size:
        return 0, n_queries
    start = min(max(0, int(start)), n_queries - size)
    return start, start + size


def thumbnail(matrix: torch.Tensor, size: int) -> torch.Tensor:
    """Shrink a ``[rows, cols]`` matrix to at most ``size x size`` by max-pooling blocks.

    Max (not mean) keeps a sharp attention stripe visible in a small thumbnail.
    """
    rows, cols = matrix.shape
    if rows <= size and cols <= size:
        return matrix
    kr, kc = -(-rows // size), -(-cols // size)
    pooled = torch.nn.functional.max_pool2d(
        matrix[None, None].float(), kernel_size=(kr, kc), stride=(kr, kc), ceil_mode=True
    )
    return pooled[0, 0]


def images_for_display(images: torch.Tensor) -> torch.Tensor:
    """``[..., C, H, W]`` images as the page draws them: RGB as ``[..., H, W, 3]``, any other
    channel count as one grey channel ``[..., H, W]`` (the channels' mean)."""
    return images.movedim(-3, -1) if images.shape[-3] == 3 else images.mean(-3)


def esm(*names: str) -> str:
    """The ES module of a widget: the shared ``_common.js``, ``_controls.js`` and ``_link.js``
    (each view's ``initialize``: relinking after anywidget's start-up window) followed by
    ``names`` (helpers some widgets share, such as ``_hypothesis.js``, then the widget's own
    module).

    anywidget takes one module string, so the shared decoder and drawing helpers are
    prepended at class-definition time instead of being imported (nothing is fetched
    at render time, and there is one source for the decoder).
    """
    folder = resources.files("explorer.views")
    parts = ["_common.js", "_controls.js", "_link.js", *names]
    return "\n".join((folder / name).read_text(encoding="utf-8") for name in parts)


def css(name: str) -> str:
    return (resources.files("explorer.views") / name).read_text(encoding="utf-8")


def _as_numpy(values: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        if values.is_complex():
            raise TypeError("complex tensors cannot be sent to the browser; take .abs() first")
        tensor = values.detach().cpu()
        return (tensor.float() if tensor.is_floating_point() else tensor).numpy()
    if isinstance(values, np.ndarray):
        return values
    raise TypeError(f"expected a torch.Tensor or numpy array, got {type(values).__name__}")
