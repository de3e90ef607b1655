"""The one serialiser: binary payloads, their size, windows and the shared front-end code."""

from __future__ import annotations

import re

import anywidget
import numpy as np
import pytest
import torch
import traitlets
from ipywidgets.widgets.widget import _remove_buffers

from explorer.views import serialize
from explorer.views.serialize import decode, encode, payload_bytes, query_window, thumbnail


def test_float16_round_trip_is_within_float16_precision():
    x = torch.randn(7, 5, generator=torch.Generator().manual_seed(0))
    p = encode(x)
    assert p["dtype"] == "float16" and p["shape"] == [7, 5] and isinstance(p["data"], bytes)
    assert payload_bytes(p) == 7 * 5 * 2
    assert np.abs(decode(p) - x.numpy()).max() < 2e-3


def test_float16_clips_instead_of_overflowing():
    assert decode(encode(torch.tensor([1e6, -1e6]))).tolist() == [65504.0, -65504.0]


def test_uint8_quantises_between_lo_and_hi():
    x = torch.linspace(-1, 3, 50)
    p = encode(x, "uint8")
    assert (p["lo"], p["hi"]) == (-1.0, 3.0) and payload_bytes(p) == 50
    assert np.abs(decode(p) - x.numpy()).max() <= 4 / 255 / 2 + 1e-6
    fixed = encode(torch.tensor([0.0, 0.5, 2.0]), "uint8", lo=0.0, hi=1.0)
    assert decode(fixed).tolist() == pytest.approx([0.0, 0.5, 1.0], abs=1 / 255)


def test_exact_dtypes_and_nan_survive():
    assert decode(encode(torch.tensor([1, -2, 3]), "int32")).tolist() == [1, -2, 3]
    out = decode(encode(torch.tensor([0.1, float("nan")]), "float32"))
    assert out[0] == pytest.approx(0.1) and np.isnan(out[1])


def test_bad_inputs_raise_naming_the_choices():
    with pytest.raises(ValueError, match="float16, uint8"):
        encode(torch.zeros(2), "float64")
    with pytest.raises(TypeError, match="torch.Tensor or numpy"):
        encode([1.0, 2.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'dtype', 'shape' and 'data'"):
        decode({"shape": [1]})


def test_a_12_head_1024_token_layer_is_well_under_30_mb():
    layer = torch.rand(12, 1024, 1024)
    size = payload_bytes(encode(layer))
    assert size == 12 * 1024 * 1024 * 2
    assert size < 26 * 2**20  # JSON numbers would be ~280 MB


def test_query_window_stays_in_range():
    assert query_window(1024, 0, 256) == (0, 256)
    assert query_window(1024, 900, 256) == (768, 1024)
    assert query_window(10, 5, 256) == (0, 10)
    with pytest.raises(ValueError, match="positive"):
        query_window(10, 0, 0)


def test_thumbnail_keeps_a_thin_stripe_visible():
    m = torch.zeros(100, 100)
    m[:, 37] = 1.0
    t = thumbnail(m, 24)
    assert t.shape[0] <= 25 and t.shape[1] <= 25
    assert float(t.max()) == 1.0 and int((t == 1.0).sum(1).min()) == 1


def test_esm_prepends_the_shared_decoder_and_loads_nothing_remote():
    for name in (
        "attention_view.js",
        "neuron_view.js",
        "intervention_panel.js",
        "patching_view.js",
    ):
        code = serialize.esm(name)
        assert code.index("function exDecode") < code.index("export default")
        assert "http://" not in code and "https://" not in code
        assert not re.search(
            r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write", code
        )


def test_no_front_end_file_fetches_anything():
    """Every .js/.css of the package: no URL but the SVG namespace (a name, never fetched)."""
    from importlib import resources

    folder = resources.files("explorer.views")
    files = [f for f in folder.iterdir() if f.name.endswith((".js", ".css"))]
    assert len(files) >= 7
    for f in files:
        code = f.read_text(encoding="utf-8")
        urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.\w+[^\s\"'`)]*", code))
        assert urls <= {"http://www.w3.org/2000/svg"}, f"{f.name} names {urls}"
        # url(#id) names an SVG pattern in the same page (a hatch); any other url( may fetch
        fetches = r"\bfetch\(|XMLHttpRequest|\bimport\(|@import|\burl\((?![\"']?#)"
        assert not re.search(fetches, code), f.name
        assert not re.search(r"^\s*import\s", code, re.M), f"{f.name} imports a module"


class _Shows(anywidget.AnyWidget):
    grid = serialize.Tensor("float16", help="[rows, cols]")
    image = serialize.Tensor("uint8", lo=0.0, hi=1.0, help="[H, W]")


def test_a_tensor_trait_encodes_once_and_sends_its_bytes_as_a_buffer():
    view = _Shows()
    assert view.grid.shape == (0,) and view.grid["dtype"] == "float16"  # empty to start
    view.grid = torch.tensor([[0.25, 0.5], [1.0, -2.0]])
    view.image = np.array([[0.0, 2.0]])  # clipped to the trait's range
    # read back as an array, no decode of a dict by hand
    assert view.grid.numpy().tolist() == [[0.25, 0.5], [1.0, -2.0]]
    assert np.asarray(view.grid).dtype == np.float32 and view.grid.tensor().shape == (2, 2)
    assert view.image.numpy().tolist() == [[0.0, 1.0]]
    # the serializer: ipywidgets lifts the bytes out of the JSON state as a binary buffer
    state, buffer_paths, buffers = _remove_buffers(view.get_state(["grid", "image"]))
    assert state["grid"] == {"dtype": "float16", "shape": [2, 2]}
    assert state["image"]["lo"] == 0.0 and state["image"]["hi"] == 1.0
    assert sorted(buffer_paths) == [["grid", "data"], ["image", "data"]]
    assert sorted(len(b) for b in buffers) == [2, 8]  # 2x2 float16, 1x2 uint8
    view.grid = None
    assert view.grid["shape"] == [0]


def test_a_tensor_trait_refuses_what_is_not_a_tensor():
    view = _Shows()
    with pytest.raises(traitlets.TraitError, match="a torch.Tensor, a numpy array"):
        view.grid = [[1.0, 2.0]]
    with pytest.raises(ValueError, match="unknown payload dtype 'float64'"):
        serialize.Tensor("float64")
