"""The local Ray cluster's start-up retries on fresh ports (tests/sweep/ray_cluster.py).

A node whose port another process took fails the same way on every retry with the same
command (the CI failure of 2026-12-07: a worker raylet found its gRPC port taken three
times), so each attempt asks for its command, and its ports, again. Checked with stand-in
commands, no Ray."""

from __future__ import annotations

import sys
from contextlib import ExitStack

from ray_cluster import _start

FAILS = [sys.executable, "-c", "import sys; print('port taken'); sys.exit(1)"]
STARTS = [
    sys.executable,
    "-c",
    "import time; print('Ray runtime started', flush=True); time.sleep(60)",
]


def test_a_failed_start_is_retried_with_a_command_asked_for_again(tmp_path):
    asked = []

    def command():
        asked.append(len(asked))
        return (FAILS if len(asked) == 1 else STARTS), None

    with ExitStack() as stack:
        _start(command, {}, tmp_path / "node.log", stack)
        assert asked == [0, 1]  # the second attempt got a command of its own
        log = (tmp_path / "node.log").read_text()
        assert "port taken" in log and "Ray runtime started" in log
