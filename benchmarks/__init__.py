"""Benchmarks: explorer side by side with the naive way, where users wait.

Run them all with ``python -m benchmarks`` (``make bench``); see ``docs/benchmarks.md``.
Each ``bench_*`` module has ``run(size) -> list[Row]``; a row holds ours, the naive way
(what a user would write with transformer-lens and circuitsvis) and their ratio. Sizes:
``"full"`` is what the README reports, ``"small"`` a quicker look, ``"tiny"`` the smoke
test that keeps every benchmark runnable (its numbers mean nothing).
"""

from __future__ import annotations

SIZES = ("tiny", "small", "full")
