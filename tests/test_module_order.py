"""`make test` queues the slowest test modules first (tests/module_order.py, MODULE_SECONDS).

Under ``--dist loadscope`` each module runs whole on one worker, taken from a queue as a
worker runs dry. xdist's default queue (``--loadscope-reorder``) puts the modules with
the most tests first, which leaves the slowest ones (a few long tests each) to the end,
where one of them keeps a core busy while the other idles. Checked here on a real xdist
run of a small project that uses the two hooks tests/conftest.py takes.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
HOOKS_PATH = REPO / "tests" / "module_order.py"

CONFTEST = f"""
import importlib.util

spec = importlib.util.spec_from_file_location("explorer_module_order", {str(HOOKS_PATH)!r})
ours = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ours)
pytest_configure = ours.pytest_configure
pytest_collection_modifyitems = ours.pytest_collection_modifyitems
"""

RECORD = """
import os

def record(name):
    with open(os.environ["ORDER_FILE"], "a") as f:
        f.write(name + "\\n")
"""


def _project(pytester: pytest.Pytester) -> Path:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(record=RECORD)
    tests = pytester.mkdir("tests")
    many = "from record import record\n" + "".join(
        f"def test_{i}():\n    record('many')\n" for i in range(12)
    )
    (tests / "test_many.py").write_text(many)
    (tests / "test_also_many.py").write_text(many.replace("'many'", "'also_many'"))
    (tests / "test_marked_slow.py").write_text(
        "import pytest\nfrom record import record\n\n"
        "@pytest.mark.slow\ndef test_slow():\n    record('marked_slow')\n"
    )
    # a module MODULE_SECONDS lists, at the path it has in the repository
    (tests / "browser").mkdir()
    (tests / "browser" / "test_auditing_notebook.py").write_text(
        "from record import record\n\ndef test_one():\n    record('auditing_notebook')\n"
    )
    pytester.makeini("[pytest]\nmarkers =\n    slow: slow\n")
    return pytester.path / "order.txt"


def _modules_in_order(pytester: pytest.Pytester, *args: str) -> list[str]:
    order = _project(pytester)
    pytester.syspathinsert()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ORDER_FILE", str(order))
        result = pytester.runpytest_subprocess("-p", "xdist", "-n", "1", *args, "tests")
    result.assert_outcomes(passed=26)
    return list(dict.fromkeys(order.read_text().split()))


def test_the_listed_then_the_slow_modules_run_first(pytester):
    assert _modules_in_order(pytester, "--dist", "loadscope") == [
        "auditing_notebook",  # listed, above UNLISTED_SLOW_S
        "marked_slow",  # marked slow, not listed: UNLISTED_SLOW_S
        "also_many",  # the rest in their collection order
        "many",
    ]


def test_every_listed_module_exists():
    spec = importlib.util.spec_from_file_location("explorer_module_order", HOOKS_PATH)
    ours = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ours)
    missing = [m for m in ours.MODULE_SECONDS if not (REPO / m).is_file()]
    assert missing == [], f"MODULE_SECONDS lists modules that are gone: {missing}"
