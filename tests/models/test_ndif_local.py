"""The remote path, for real: explorer's analyses as traces sent to an NDIF server.

The module starts ``scripts/ndif_local.sh``: the ``ndif`` server (0.1.2) on 127.0.0.1, on
the CPU (Redis, an S3 store, Ray, ndif's controller, model actor and API), serving a tiny
random-weight GPT-2 folder written here. A handle opened with
``explorer.load(folder, backend="nnsight", remote=url)`` sends every trace to it over HTTP
and a websocket, and each analysis must give the transformer-lens backend's numbers to
1e-4. The server needs Debian's ``redis-server`` and its own venv, which ``make test``
installs first (``make ndif-deps``: ``.ndif-venv`` in the checkout, on top of the project's
``.venv``; ``NDIF_VENV`` points elsewhere). So the module never skips: without the venv or
Redis it fails, naming what is missing and ``make ndif-deps``. A skip would turn a broken
install green in CI, where ``make test`` on a clean checkout must run these traces; by hand,
``-m 'not slow'`` leaves the module out. Starting the server takes about three minutes on
two cores.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import hf_tiny
import pytest
import torch

import explorer
from explorer.analysis import (
    ablation_sweep,
    activation_patching,
    direct_logit_attribution,
    head_scores,
    logit_lens,
    metrics,
    path_patching,
    top_k_examples,
)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "ndif_local.sh"
VENV = Path(os.environ.get("NDIF_VENV", REPO / ".ndif-venv"))
CORRUPTED = "When John and Mary went to the store, Mary gave a drink to"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    missing = [
        what
        for what, ok in (
            (f"the ndif venv at {VENV}", (VENV / ".ndif-installed").is_file()),
            ("Debian's redis-server", shutil.which("redis-server") is not None),
        )
        if not ok
    ]
    if missing:
        pytest.fail(
            f"no local NDIF server: missing {' and '.join(missing)}; `make ndif-deps` installs "
            "both (make test runs it), or set NDIF_VENV to an installed venv; docs/scale.md"
        )
    root = tmp_path_factory.mktemp("ndif")
    folder = hf_tiny.write_family("gpt2", root / "tiny-gpt2")
    state = root / "server"
    env = {**os.environ, "NDIF_VENV": str(VENV)}
    try:
        run = subprocess.run(
            ["bash", str(SCRIPT), "start", str(folder), str(state)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        yield folder, run.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(state)], env=env, timeout=120)


@pytest.fixture(scope="module")
def handles(server):
    folder, url = server
    return explorer.load(folder), explorer.load(folder, backend="nnsight", remote=url)


def _tokens(model):
    g = torch.Generator().manual_seed(0)
    half = torch.randint(5, model.d_vocab, (4, 4), generator=g)
    return torch.cat([torch.full((4, 1), model.tokenizer.bos_token_id), half, half], dim=1)


def _close(a, b):
    a, b = torch.as_tensor(a).detach().float(), torch.as_tensor(b).detach().float()
    assert a.shape == b.shape
    assert torch.allclose(a, b, atol=1e-4, rtol=0, equal_nan=True)


def _metric(tl):
    return metrics.logit_diff(" Mary", " John", model=tl)


ANALYSES = {
    "logits": lambda m, t, c, x, metric: m.run_with_hooks(t, []),
    "cache": lambda m, t, c, x, metric: m.cache_pass(t, names=["blocks.1.attn.hook_z"])[1][
        "blocks.1.attn.hook_z"
    ],
    "head sweep": lambda m, t, c, x, metric: (
        ablation_sweep(m, t, metric=metric, granularity="head").after_per_example
    ),
    "activation patching": lambda m, t, c, x, metric: (
        activation_patching(m, c, corrupted=x, metric=metric, grid="head").values
    ),
    "path patching": lambda m, t, c, x, metric: (
        path_patching(m, c, corrupted=x, receivers="head 1.0", metric=metric).values
    ),
    "direct logit attribution": lambda m, t, c, x, metric: (
        direct_logit_attribution(m, c, target=" Mary", granularity="head").values
    ),
    "logit lens": lambda m, t, c, x, metric: logit_lens(m, c, n=3).top_logits,
    "top-k": lambda m, t, c, x, metric: top_k_examples(m, t, layer=0, n=3).values,
    "head scores": lambda m, t, c, x, metric: head_scores(m, t).get("induction"),
}


@pytest.mark.parametrize("analysis", list(ANALYSES))
def test_an_analysis_runs_on_the_server(handles, analysis, capfd):
    tl, remote = handles
    tokens = _tokens(tl)
    clean, corrupted = tl.to_tokens(hf_tiny.IOI), tl.to_tokens(CORRUPTED)
    run = ANALYSES[analysis]
    before = remote.spent.forward
    ours = run(remote, tokens, clean, corrupted, _metric(tl))
    # nnsight's remote client reports each job the server completed
    printed = capfd.readouterr()
    assert "COMPLETED" in printed.out + printed.err
    assert remote.spent.forward > before  # counted as passes that ran elsewhere
    _close(run(tl, tokens, clean, corrupted, _metric(tl)), ours)
