"""Every forward pass of a handle checks for a cancelled request first (explorer._cancel)."""

from __future__ import annotations

import threading

import pytest
import torch

from explorer._cancel import Cancelled, cancellable, check_cancelled
from explorer.analysis import ablation_sweep, metrics
from explorer.models import zoo


def test_passes_stop_once_cancelled_and_run_outside_a_cancellable_block():
    m = zoo.mnist_mlp(hidden=(8,), seed=0)
    x, y = torch.rand(4, 1, 28, 28), torch.arange(4)
    hook = m.hook_name("post", 0)
    stop = threading.Event()
    with cancellable(stop):
        assert m(x).shape == (4, 10)  # not asked: runs
        stop.set()
        for run in (
            lambda: m(x),
            lambda: m.cache_pass(x, names=[hook]),
            lambda: m.run_with_hooks(x, []),
            lambda: ablation_sweep(m, x, metric=metrics.accuracy(y), granularity="neuron"),
        ):
            with pytest.raises(Cancelled, match="cancelled from the page"):
                run()
    check_cancelled()  # outside the block the flag is gone
    assert m(x).shape == (4, 10)
    assert not issubclass(Cancelled, Exception)  # `except Exception` cannot swallow it
