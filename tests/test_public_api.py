"""The curated public API resolves, and importing explorer loads no widget library."""

from __future__ import annotations

import subprocess
import sys

import explorer


def test_every_public_name_resolves():
    for name in explorer.__all__:
        assert getattr(explorer, name) is not None, name


def test_import_explorer_is_light():
    code = (
        "import sys, explorer\n"
        "print(sorted(m for m in ('anywidget', 'ipywidgets', 'plotly', 'transformer_lens', 'sqlalchemy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_unknown_attribute():
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        explorer.nope  # noqa: B018
