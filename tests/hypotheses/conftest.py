"""Fixtures for hypothesis tests: planted models whose mechanism is known, and their data."""

from __future__ import annotations

import pytest
import torch
from neuron_hypotheses import neuron_hypothesis

from explorer.hypotheses import planted

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def prev_model():
    return planted.previous_token_model()


@pytest.fixture(scope="session")
def prev_data():
    return planted.previous_token_examples(160, seed=1)


@pytest.fixture(scope="session")
def concept_model():
    return planted.concept_neuron_model()


@pytest.fixture(scope="session")
def concept_data():
    return planted.concept_examples(400, seed=2)


@pytest.fixture
def make_hypothesis():
    """A valid neuron hypothesis, with any field overridden."""
    return lambda **changes: neuron_hypothesis(400, **changes)


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


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path):
    """Where a store lives: a SQLite file, or a fresh database on the PostgreSQL server."""
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    return request.getfixturevalue("postgres_server").new_database()
