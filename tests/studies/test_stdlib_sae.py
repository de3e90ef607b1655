"""The standard-library SAE study: token kinds, kind purity, held-out simulation scores, and
the shipped SAE (float16 on disk, loaded as float32, splicing to the model exactly)."""

from __future__ import annotations

import re
from fnmatch import fnmatch
from pathlib import Path

import pytest
import torch

from explorer.studies.stdlib_sae import (
    KINDS,
    SHIPPED_SAE,
    kind_purity,
    load_stdlib_sae,
    simulation_scores,
    token_kind,
)


@pytest.mark.parametrize(
    ("text", "kind"),
    [("\n", "indentation"), ("\n        ", "indentation"), ("    ", "indentation"),
     (" ", "other"), ("'", "quote"), ('"""', "quote"), ("('", "quote"), (" return", "keyword"),
     ("None", "keyword"), (" self", "identifier"), ("_name", "identifier"), ("(", "other"),
     (" 12", "other")],
)  # fmt: skip
def test_token_kind(text, kind):
    assert token_kind(text) == kind


def test_token_kind_refuses_a_non_string():
    with pytest.raises(TypeError, match="token's text"):
        token_kind(3)


def test_kind_purity_counts_each_units_top_tokens_by_kind():
    vocab = ["\n    ", "'", " if", " x", "("]
    tokens = torch.tensor([[0, 1, 2, 3, 4, 0, 2]])
    acts = torch.zeros(1, 7, 3)
    acts[0, [0, 5], 0] = torch.tensor([3.0, 2.0])  # unit 0: indentation only
    acts[0, [2, 6, 3], 1] = torch.tensor([5.0, 4.0, 1.0])  # unit 1: two keywords, then a name
    p = kind_purity(tokens, acts, vocab, n=3)
    assert p.purity[0].tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]  # fired on 2 < n tokens
    assert p.purity[1, KINDS.index("keyword")] == pytest.approx(2 / 3)
    assert p.purity[2].sum() == 0 and p.top_tokens[2] == ()  # never fires
    assert p.top_tokens[1] == (2, 2, 3)
    assert p.coverage[1, KINDS.index("keyword")] == 1.0  # fires on both ' if' tokens
    assert p.coverage[0, KINDS.index("indentation")] == 1.0
    assert p.best("indentation") == 0 and p.best("keyword") == 1
    assert p.ranking("identifier")[0] == 1
    # a unit pure on one rare token of a kind matches it less than a broad one
    rare = torch.zeros(1, 7, 2)
    rare[0, 2, 0] = 9.0  # fires on one of the two ' if' tokens
    rare[0, [2, 6], 1] = 1.0  # fires on both
    assert kind_purity(tokens, rare, vocab, n=3).best("keyword") == 1
    with pytest.raises(ValueError, match="unknown kind 'names'"):
        p.best("names")
    with pytest.raises(ValueError, match=r"\[batch, pos, unit\]"):
        kind_purity(tokens, acts[:, :3], vocab)


def test_simulation_scores_are_formed_on_one_split_and_scored_on_the_other():
    g = torch.Generator().manual_seed(0)
    form = torch.randint(0, 6, (8, 20), generator=g)
    held = torch.randint(0, 6, (8, 20), generator=g)

    def acts(t):  # unit 0 fires on token 3; unit 1 is noise; unit 2 is token 3 on formation only
        noise = torch.rand(*t.shape, generator=g)
        return torch.stack([(t == 3).float() * 2, noise, (t == 3).float()], -1)

    a_form, a_held = acts(form), acts(held)
    a_held[..., 2] = (held == 5).float()  # unit 2 changes meaning on held-out text
    s = simulation_scores(form, a_form, held, a_held, n=1)
    assert s[0] == pytest.approx(1.0)
    assert abs(float(s[1])) < 0.3
    assert float(s[2]) < 0  # its formation explanation (token 3) misses on held-out text
    with pytest.raises(ValueError, match="same units"):
        simulation_scores(form, a_form, held, a_held[..., :2])


def test_the_shipped_sae_is_package_data():
    root = Path(__file__).resolve().parents[2]
    section = (root / "pyproject.toml").read_text().split("[tool.setuptools.package-data]")[1]
    patterns = re.findall(r'"([^"]+)"', section.split("\n[")[0])
    for file in SHIPPED_SAE.iterdir():
        name = file.relative_to(root / "explorer").as_posix()
        assert any(fnmatch(name, p) for p in patterns), f"{name} is not package data"
    assert (SHIPPED_SAE / "sae_weights.safetensors").stat().st_size < 80_000


def test_the_shipped_sae_is_float16_on_disk_and_splices_exactly():
    from safetensors.torch import load_file

    from explorer.features import run_spliced
    from explorer.studies.stdlib_lm import load_stdlib_lm

    assert {v.dtype for v in load_file(SHIPPED_SAE / "sae_weights.safetensors").values()} == {
        torch.float16
    }
    lm = load_stdlib_lm()
    sae = load_stdlib_sae(lm.model)
    assert sae.hook == "blocks.1.hook_resid_pre" and sae.d_sae == 256
    assert sae.decoder.dtype == torch.float32
    tokens = torch.randint(0, lm.model.d_vocab, (2, 32), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(
            run_spliced(lm.model, tokens, sae), lm.model(tokens), atol=1e-5, rtol=0
        )
