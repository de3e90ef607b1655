"""Fixtures for live-session tests: a store on each backend (a SQLite file, a fresh database
on a throwaway PostgreSQL server), and the server itself for raw SQL as a participant."""

from __future__ import annotations

import pytest
import torch
from neuron_hypotheses import neuron_hypothesis

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def postgres_server():
    """One throwaway PostgreSQL server per test process (skipped, with the reason, without one)."""
    from postgres_server import PostgresServer, why_unavailable

    reason = why_unavailable()
    if reason is not None:
        pytest.skip(reason)
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres_server):
    return postgres_server.new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """Where a room's store lives: a SQLite file, or a fresh database on the server."""
    if request.param == "sqlite":
        return str(tmp_path / "room.db")
    return request.getfixturevalue("postgres_server").new_database()


@pytest.fixture(scope="session")
def concept_data():
    from explorer.hypotheses import planted

    return planted.concept_examples(200, seed=2)


@pytest.fixture
def make_hypothesis():
    """A valid neuron hypothesis (small bootstrap), with any field overridden."""
    return lambda **changes: neuron_hypothesis(200, **{"n_boot": 100, **changes})
