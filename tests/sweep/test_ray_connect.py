"""Connecting to a Ray cluster through Ray Client (``ray://``), with a stand-in ``ray``
module: nothing is started, so these run in a moment.

On a busy machine the cluster can fail to start the server process it runs for each Ray
Client connection ("Starting Ray client server failed"; the CI run of 2026-12-06); the
sweep then connects again, at most three times. Through Ray Client the worker setup hook
is not sent: it does not reach a client's workers (docs/sweeps.md), and a runtime env makes
that server's start wait on the cluster's runtime-env agent.
"""

from __future__ import annotations

import sys
import types

import pytest

from explorer.sweep import execute

FAILED_START = (
    "Initialization failure from server:\nRuntimeError: Starting Ray client server failed. "
    "See ray_client_server_23000.err for detailed logs."
)


def _fake_ray(monkeypatch, failures: int, message: str = FAILED_START) -> list[dict]:
    calls: list[dict] = []

    def init(**kwargs):
        calls.append(kwargs)
        if len(calls) <= failures:
            raise ConnectionAbortedError(message)

    fake = types.SimpleNamespace(
        is_initialized=lambda: False, init=init, shutdown=lambda: None,
        remote=lambda **_: lambda f: types.SimpleNamespace(remote=lambda: None),
        cluster_resources=lambda: {"CPU": 2},
    )  # fmt: skip
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setattr(execute, "_RAY", {"key": None, "warm": True, "warming": []})
    return calls


def test_a_client_server_that_failed_to_start_is_asked_for_again(monkeypatch):
    calls = _fake_ray(monkeypatch, failures=2)
    execute._ray("ray://127.0.0.1:10001", None, None)
    assert len(calls) == 3
    assert all("worker_process_setup_hook" not in c.get("runtime_env", {}) for c in calls)


def test_three_failed_starts_and_other_errors_are_raised(monkeypatch):
    _fake_ray(monkeypatch, failures=3)
    with pytest.raises(ConnectionAbortedError, match="Starting Ray client server failed"):
        execute._ray("ray://127.0.0.1:10001", None, None)
    calls = _fake_ray(monkeypatch, failures=1, message="version mismatch")
    with pytest.raises(ConnectionAbortedError, match="version mismatch"):
        execute._ray("ray://127.0.0.1:10001", None, None)
    assert len(calls) == 1


def test_a_local_ray_still_gets_the_worker_setup_hook(monkeypatch):
    calls = _fake_ray(monkeypatch, failures=0)
    execute._ray(None, 2, None)
    assert calls[0]["runtime_env"] == {"worker_process_setup_hook": execute.WORKER_SETUP}
