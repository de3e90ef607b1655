"""The one serialiser: binary payloads, their size, windows and the shared front-end code."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

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
        assert not re.search(r"\bfetch\(|XMLHttpRequest|\bimport\(|@import|\burl\(", code), f.name
        assert not re.search(r"^\s*import\s", code, re.M), f"{f.name} imports a module"
