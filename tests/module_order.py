"""Under ``make test`` (pytest-xdist, ``--dist loadscope``) the slowest test modules start
first; tests/conftest.py takes these hooks (kept here, apart from the fixtures, so that
tests/test_module_order.py can load them into a small project without torch).
"""

from __future__ import annotations

import pytest

# `make test` runs pytest-xdist with --dist loadscope: each module runs whole on one of the
# workers, taken from a queue as a worker runs dry. The slowest modules must start first,
# or one of them left to the end keeps one core busy while the other has nothing to do.
# Seconds each module took in CI (2 workers on 2 cores, setup included, from
# `--durations` of `make test`); a slow or browser module not listed counts as
# UNLISTED_SLOW_S, every other module as 0 (they keep their collection order, after these).
MODULE_SECONDS = {  # a fresh `make test` on 2 cores, 2026-12-07
    "tests/browser/test_tutorials_in_lab.py": 20,
    "tests/browser/test_auditing_notebook.py": 125,
    "tests/browser/test_mnist_notebook.py": 105,  # beside busy loops
    "tests/sweep/test_sweep_ray.py": 180,
    "tests/models/test_ndif_local.py": 120,
    "tests/browser/test_long_requests_in_lab.py": 105,
    "tests/browser/test_live_session_in_lab.py": 85,
    "tests/browser/test_quickstart_in_lab.py": 80,
    "tests/analysis/test_audit_localize.py": 65,
    "tests/browser/test_anywidget_init_timeout.py": 60,
    "tests/browser/test_stdlib_lm_notebook.py": 55,
    "tests/browser/test_sweep_view_in_lab.py": 55,
    "tests/test_benchmarks.py": 50,
    "tests/browser/test_docs_site.py": 50,
    "tests/browser/test_views_relink.py": 45,
    "tests/browser/test_audit_view_in_lab.py": 45,
    "tests/browser/test_what_fine_tuning_changes_notebook.py": 45,
    "tests/studies/test_grokking.py": 40,
    "tests/browser/test_lab_first_widget.py": 37,
    "tests/test_live_session_notebook.py": 30,
    "tests/analysis/test_audit.py": 27,
    "tests/browser/test_features_notebook.py": 36,
    "tests/browser/test_view_screenshots.py": 25,
    "tests/test_readme_audit.py": 23,
    "tests/browser/test_when_grokking_notebook.py": 25,
    "tests/browser/test_grokking_notebook.py": 30,
    "tests/browser/test_induction_notebook.py": 35,
    "tests/browser/test_lm_views_in_lab.py": 17,
    "tests/studies/test_grokking_phases.py": 15,  # its six runs ship as data
}
UNLISTED_SLOW_S = 30


def pytest_configure(config):
    # xdist's default --loadscope-reorder queues modules by their number of tests, most
    # first: the slowest modules (a few long tests each) would come last. Queue them in the
    # order pytest_collection_modifyitems leaves them instead.
    if getattr(config.option, "dist", "no") == "loadscope":
        config.option.loadscopereorder = False


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist, the slowest modules first (MODULE_SECONDS); each module's own
    tests keep their order. The same order on every worker (xdist checks they agree)."""
    if not hasattr(config, "workerinput"):  # a run in one process: the order changes nothing
        return
    seconds: dict[str, float] = {}
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        slow = any(item.iter_markers("slow")) or any(item.iter_markers("browser"))
        listed = MODULE_SECONDS.get(module, UNLISTED_SLOW_S if slow else 0)
        seconds[module] = max(seconds.get(module, 0), listed)
    items.sort(key=lambda item: -seconds[item.nodeid.split("::", 1)[0]])
