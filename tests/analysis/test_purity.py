"""explorer.analysis must never load a widget or plotting library."""

from __future__ import annotations

import subprocess
import sys


def test_analysis_imports_no_display_library():
    code = (
        "import sys, explorer.analysis, explorer.analysis.head_scores, explorer.analysis.ablation\n"
        "import pkgutil, importlib\n"
        "for m in pkgutil.iter_modules(explorer.analysis.__path__):\n"
        "    importlib.import_module('explorer.analysis.' + m.name)\n"
        "bad = [m for m in ('ipywidgets', 'anywidget', 'plotly', 'IPython', 'matplotlib', 'circuitsvis') if m in sys.modules]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "[]"
