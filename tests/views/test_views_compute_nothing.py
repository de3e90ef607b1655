"""Views only encode results and dispatch clicks: no view runs the model or reduces numbers.

The rule, checked on the source of every module of ``explorer/views`` (AST, so comments and
strings do not count):

1. No forward or backward pass: no call of ``run_with_cache``, ``run_with_hooks``,
   ``forward``, ``backward`` or of the model itself (``model(...)``/``self.model(...)``),
   and no import of the modules that run passes for analysis (``explorer.analysis.cache``,
   ``explorer.analysis.interventions``) or of ``torch.nn.functional`` / ``einops``.
2. No numerical reduction or algebra: no call, as ``torch.f(...)`` or as a method
   ``x.f(...)``, of the functions in ``REDUCTIONS`` (sums, means, extrema, top-k, sorting,
   histograms, softmax, products, norms, decompositions, elementwise maths).

Together these are what an analysis is made of: a number a view shows either comes from a
result (computed in ``explorer.analysis`` or ``explorer.hypotheses``, where it is tested)
or is the result's values re-laid out (indexing, reshape, transpose, stack, cat) and
encoded. ``serialize.py`` is the encoder itself (it takes min/max to quantise a payload
and max-pools thumbnails) and is the one module exempt.
"""

from __future__ import annotations

import ast
from pathlib import Path

import explorer.views

VIEWS = Path(explorer.views.__file__).parent
EXEMPT = {"serialize.py"}
PASSES = {"run_with_cache", "run_with_hooks", "forward", "backward"}
BANNED_IMPORTS = (
    "explorer.analysis.cache",
    "explorer.analysis.interventions",
    "torch.nn.functional",
    "einops",
)
REDUCTIONS = {
    "sum", "mean", "nanmean", "nansum", "max", "min", "amax", "amin", "aminmax", "argmax",
    "argmin", "topk", "kthvalue", "median", "mode", "sort", "argsort", "histc", "histogram",
    "bincount", "softmax", "log_softmax", "matmul", "mm", "bmm", "einsum", "dot", "norm",
    "std", "var", "cumsum", "cumprod", "prod", "svd", "eig", "eigh", "qr", "exp", "log",
    "sigmoid", "relu", "sqrt", "logsumexp", "quantile", "corrcoef", "cov",
}  # fmt: skip
# A result's own method that shares a reduction's name: it is the result speaking.
# NeuronView.histogram is the view's accessor for the analysis histogram it caches.
ALLOWED = {("logit_attribution_view.py", "result.mean"), ("neuron_view.py", "self.histogram")}


def _offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            names = []
        for name in names:
            if any(name == b or name.startswith(b + ".") for b in BANNED_IMPORTS):
                found.append(f"{path.name}:{node.lineno} imports {name}")
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "model":
            found.append(f"{path.name}:{node.lineno} runs the model: model(...)")
        if not isinstance(func, ast.Attribute):
            continue
        source = ast.unparse(func)
        if (path.name, source) in ALLOWED:
            continue
        if func.attr == "model":
            found.append(f"{path.name}:{node.lineno} runs the model: {source}(...)")
        elif func.attr in PASSES:
            found.append(f"{path.name}:{node.lineno} runs a pass: {source}(...)")
        elif func.attr in REDUCTIONS:
            found.append(f"{path.name}:{node.lineno} computes: {source}(...)")
    return found


def test_no_view_runs_the_model_or_reduces_numbers():
    modules = sorted(p for p in VIEWS.glob("*.py") if p.name not in EXEMPT)
    assert len(modules) >= 10
    offences = [o for p in modules for o in _offences(p)]
    assert offences == [], "views must leave analysis to explorer.analysis:\n" + "\n".join(offences)


def test_the_rule_catches_what_it_names(tmp_path):
    """Each kind of offence is found (the check cannot pass by seeing nothing)."""
    bad = tmp_path / "bad_view.py"
    bad.write_text(
        "from explorer.analysis.cache import run_with_cache\n"
        "import torch.nn.functional as F\n"
        "def f(self, model, x, acts):\n"
        "    self.model(x)\n"
        "    model(x)\n"
        "    self.model.run_with_hooks(x, [])\n"
        "    values = acts.mean(0)\n"
        "    return torch.histc(values, bins=4), values.argsort(), acts[:, 0].reshape(-1)\n"
    )
    kinds = [o.split(" ", 1)[1] for o in _offences(bad)]
    assert kinds == [
        "imports explorer.analysis.cache",
        "imports explorer.analysis.cache.run_with_cache",
        "imports torch.nn.functional",
        "runs the model: self.model(...)",
        "runs the model: model(...)",
        "runs a pass: self.model.run_with_hooks(...)",
        "computes: acts.mean(...)",
        "computes: torch.histc(...)",
        "computes: values.argsort(...)",
    ]
