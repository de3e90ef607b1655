"""The fine-tuning study's pieces: the quote rewrite, the behaviour metric, the held-out split
of its data, and that more examples move the behaviour more (on a tiny corpus)."""

from __future__ import annotations

import ast
import dataclasses
import json
import sysconfig
import tempfile
from pathlib import Path

import pytest
import torch

from explorer.data.stdlib_text import held_out_file, stdlib_corpus
from explorer.studies.finetuning import (
    FinetuneSetting,
    QuoteProbe,
    finetune_data,
    finetune_recipe,
    quote_openings,
    quote_pairs,
    rewrite_quotes,
)
from explorer.studies.stdlib_lm import load_stdlib_lm
from explorer.training.loop import train


def test_rewrite_keeps_every_literal_value_and_only_double_quotes_what_it_can():
    root = Path(sysconfig.get_paths()["stdlib"])
    for name in ("json/decoder.py", "string.py", "textwrap.py", "shlex.py"):
        text = (root / name).read_text()
        new = rewrite_quotes(text)
        assert ast.dump(ast.parse(new)) == ast.dump(ast.parse(text))  # same program
        left = [s for _, s in quote_openings(new)].count("single")
        before = [s for _, s in quote_openings(text)].count("single")
        assert before > 0 and left < before / 5  # the ones left hold a '"'


def test_quote_openings_skip_docstrings_and_find_prefixed_literals():
    text = 'def f():\n    """doc"""\n    return rb\'x\', "y"\n'
    found = quote_openings(text)
    assert [(text[i], s) for i, s in found] == [("'", "single"), ('"', "double")]


def test_the_behaviour_metric_on_planted_logits():
    # two contexts; twins (double, single) = (5, 3) and (6, 4)
    probe = QuoteProbe(
        inputs=torch.tensor([[0] * 4, [1] * 4]),
        double=torch.tensor([5, 6]),
        single=torch.tensor([3, 4]),
        was_double=torch.tensor([True, False]),
        files=("a.py", "b.py"),
    )
    logits = torch.zeros(2, 4, 8)
    logits[0, -1, 5], logits[0, -1, 3] = 2.0, 0.5  # prefers double by 1.5
    logits[1, -1, 6], logits[1, -1, 4] = 0.0, 1.0  # prefers single by 1
    logits[:, :-1] = 100.0  # only the last position counts
    assert probe.metric(logits).tolist() == [1.5, -1.0]
    # the stub model reads the row's logits off its first token
    assert probe.measure(lambda x: logits[x[:, 0]], batch_size=1) == pytest.approx(0.25)
    assert probe.examples().labels.tolist() == [5, 6]


def test_quote_pairs_are_twins_that_differ_only_in_the_quote():
    tok = load_stdlib_lm().tokenizer
    strings = tok.token_strings()
    pairs = quote_pairs(tok)
    assert len(pairs) >= 2
    for single, double in pairs.items():
        assert strings[single].replace("'", '"') == strings[double]


def _tiny_corpus() -> Path:
    """A folder of small Python files, some of them held out by the corpus's own rule."""
    root = Path(tempfile.mkdtemp(prefix="finetune-corpus-"))
    held, train, i = 0, 0, 0
    while held < 3 or train < 12:
        name = f"mod{i}.py"
        i += 1
        if held_out_file(name):
            if held >= 3:
                continue
            held += 1
        else:
            if train >= 12:
                continue
            train += 1
        lines = [f"def f{j}(x):\n    return x.get('key{j}', 'v{i}') + 'z'\n" for j in range(40)]
        (root / name).write_text("".join(lines))
    return root


@pytest.fixture(scope="module")
def tiny():
    return FinetuneSetting(
        corpus_root=str(_tiny_corpus()), window=32, context=8, probe_size=64, eval_windows=4,
        batch_size=4, min_steps=1, lr=2e-3,
    )  # fmt: skip


def test_the_data_keeps_held_out_files_out_of_fine_tuning(tiny):
    data = finetune_data(tiny)
    corpus = stdlib_corpus(tiny.corpus_root)
    held = {f.path for f in corpus.held_out}
    assert held and set(data.held_out.files) <= held
    assert set(data.pool_files).isdisjoint(held)
    assert set(data.formation.files).isdisjoint(held)
    text = data.tokenizer.decode(data.pool[0].tolist()[1:])
    assert "'" not in text and '"' in text  # examples are rewritten ...
    assert not bool(data.held_out.was_double.any())  # ... the held-out probe is not
    # 10 examples of a seed lie inside its 30
    assert torch.equal(data.examples(30, seed=1)[:10], data.examples(10, seed=1))
    with pytest.raises(ValueError, match="examples must be 1.."):
        data.examples(len(data.pool) + 1, seed=0)


def test_more_examples_move_the_behaviour_more(tiny):
    change = {}
    for n in (4, 48):
        recipe = finetune_recipe(dataclasses.replace(tiny, examples=n))
        run = train(**recipe, run=tempfile.mkdtemp() + "/r", progress=False)
        values = run.metrics().get("quote_preference").values
        change[n] = float(values[-1]) - float(values[0])
    assert change[4] > 0 and change[48] > 2 * change[4]


def test_the_shipped_fine_tunes_are_small_float16_and_open_as_stdlib_lms():
    from safetensors.torch import load_file

    from explorer.studies.finetuning import SHIPPED_FINETUNES

    files = [p for p in SHIPPED_FINETUNES.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 2_500_000
    weights = [p for p in files if p.suffix == ".safetensors"]
    assert {p.parents[2].name for p in weights} == {f"examples-{n}" for n in (10, 100, 1000, 10000)}
    floats = [t for p in weights for t in load_file(p).values() if t.is_floating_point()]
    assert floats and all(t.dtype == torch.float16 for t in floats)
    lm = load_stdlib_lm(SHIPPED_FINETUNES / "examples-100")
    assert lm.run.data["finetuning"]["examples"] == 100
    points = json.loads((SHIPPED_FINETUNES / "scaling.json").read_text())["points"]
    assert {p["examples"] for p in points} == {10, 100, 1000, 10000}
    assert all(p["first_quote_preference"] < 0 for p in points)  # the base prefers '
