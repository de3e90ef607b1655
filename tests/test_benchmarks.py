"""Smoke test of the benchmarks: each runs once at the tiny size so none can rot.

Nothing here asserts a speed (the tiny numbers mean nothing); it checks that every row
is there with finite numbers, that ours agrees with the naive way where both compute the
same thing, and that the runner, JSON and Markdown plumbing work.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

# benchmarks/ is a top-level folder beside explorer/, not an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import __main__ as runner
from benchmarks import (
    bench_ablation,
    bench_compare,
    bench_gpt2,
    bench_imports,
    bench_live_session,
    bench_patching,
    bench_payload,
    bench_sae_splice,
    bench_topk,
)
from benchmarks.markdown import README_END, README_START, render, update_readme
from benchmarks.results import Row, format_table, machine, to_json
from explorer.analysis import activation_patching, attribution_patching

torch.set_num_threads(1)


def _check_rows(rows: list[Row], benchmark: str, n: int) -> None:
    assert len(rows) == n, [r.case for r in rows]
    for row in rows:
        assert row.benchmark == benchmark
        assert row.status == "ok", row.note
        assert row.ours is not None and math.isfinite(row.ours), row
        for value in (row.naive, row.ratio):
            assert value is None or math.isfinite(value), row
        if row.target:
            assert row.met in (True, False), row
    assert format_table(rows).count("\n") >= n + 1


def test_ablation_sweep_matches_the_naive_loop():
    rows = bench_ablation.run("tiny")
    _check_rows(rows, "ablation sweep", 6)
    sweeps = [r for r in rows if "exact floor" not in r.case]
    for row in sweeps:
        assert row.details["max_abs_diff"] <= bench_ablation.TOLERANCE
        assert row.naive > 0 and row.ratio == pytest.approx(row.naive / row.ours)
    units = [r.details["units"] for r in sweeps]
    assert units == [8, 4, 128, 16]  # every head, then every neuron of the layer
    floors = [r for r in rows if "exact floor" in r.case]  # one per head sweep
    assert [r.case.removesuffix(": ours vs the exact floor") for r in floors] == [
        r.case for r in sweeps[:2]
    ]
    for floor, sweep in zip(floors, sweeps):
        assert floor.ours == sweep.ours and floor.naive == sweep.details["floor_s"]
        assert floor.met == (floor.details["above_floor"] <= bench_ablation.FLOOR_SLACK)


def test_spliced_sae_equals_hooked_sae_transformer():
    rows = bench_sae_splice.run("tiny")
    _check_rows(rows, bench_sae_splice.BENCHMARK, 2)
    equal = rows[0]
    assert equal.met and equal.ours <= bench_sae_splice.TOLERANCE
    assert set(equal.details) == {"unedited", "feature 3 zeroed", "vs the model"}
    assert equal.details["vs the model"] <= bench_sae_splice.TOLERANCE


def test_gpt2_scale_rows_at_a_tiny_size():
    rows = bench_gpt2.run("tiny")
    _check_rows(rows, "GPT-2-small scale", 6)
    first, click, sweep, floor, memory, throughput = rows
    assert first.unit == "MiB" and first.ours < first.naive  # windowed: less than everything
    assert click.details["window_payload_kib"] > 0 and len(click.details["click_cpu_ms"]) == 2
    assert sweep.details["units"] == 8 and sweep.details["max_abs_diff"] <= bench_gpt2.TOLERANCE
    for row in (first, sweep, floor):  # peak memory on every row
        assert any("peak_rss_growth_mb" in key for key in row.details), row.details
    assert memory.details["max_abs_diff"] <= 1e-5
    assert memory.details["one_million_tokens_cache_all_gib"] == 2**20 * 64 * 4 / 2**30


def test_naive_ablation_sweep_sees_each_unit():
    case = bench_ablation.cases("tiny")[0]
    before, after = bench_ablation.naive_sweep(case.model, case.inputs, case.metric, case.units)
    assert after.shape == (len(case.units), case.inputs.shape[0])
    assert not torch.allclose(after, before.expand_as(after))  # the hook really ablated


def test_top_k_streamed_matches_cache_all():
    rows = bench_topk.run("tiny")
    _check_rows(rows, "top-k neuron examples", 2)
    memory, throughput = rows
    assert memory.details["max_abs_diff"] <= 1e-5
    assert memory.details["topk_state_bytes"] > 0
    assert throughput.unit == "tokens/s" and throughput.ratio > 0


def test_top_k_child_entry_point_prints_a_report(tmp_path, capsys):
    out = tmp_path / "values.npy"
    bench_topk.main(["--variant", "streamed", "--size", "tiny", "--values-out", str(out)])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["variant"] == "streamed" and report["tokens_per_s"] > 0
    assert out.exists()


def test_patching_matches_the_naive_loop_and_reports_correlation():
    rows = bench_patching.run("tiny")
    _check_rows(rows, "activation patching", 3)
    assert rows[0].details["max_abs_diff"] <= bench_patching.TOLERANCE
    # the reported r is Pearson's r of the two grids, recomputed here with numpy
    model, clean, corrupted, metric = bench_patching.task("tiny")
    exact = activation_patching(model, clean, corrupted=corrupted, metric=metric, grid="resid")
    approx = attribution_patching(model, clean, corrupted=corrupted, metric=metric, grid="resid")
    r = np.corrcoef(approx.values.flatten().numpy(), exact.values.flatten().numpy())[0, 1]
    assert rows[2].ours == pytest.approx(r, abs=1e-9)
    assert rows[1].details["pearson_r"] == rows[2].ours
    # the first-order estimate follows exact patching (0.88 measured on this seeded model): a
    # sign error or a gradient taken at the wrong site would drop it to around 0 or below
    assert rows[2].ours > 0.5


def test_comparing_models_rows_at_a_tiny_size():
    """Cross-model patching equals its hook loop (the row raises otherwise) and compare's
    row states its O(units) state beside the activations it did not keep."""
    patch, timing = bench_compare.run("tiny")
    _check_rows([patch, timing], "comparing models", 2)
    assert patch.details["max_abs_diff"] <= bench_compare.TOLERANCE
    assert 0 < timing.details["state_bytes"] < timing.details["activations_x_tokens_bytes"]
    a, b, tokens, metric = bench_compare.patching_pair(bench_compare.TINY, 2, 12)
    naive = bench_compare.naive_cross_patching(a, b, tokens, metric)
    ours = activation_patching(a, tokens, other=b, metric=metric, grid="head")
    assert ours.recovery.isfinite().all()
    torch.testing.assert_close(ours.values, naive, atol=1e-5, rtol=0)


def test_the_benchmark_correlation_orders_agreement():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, generator=g)
    noise = torch.randn(200, generator=g)
    pearson = bench_patching._pearson
    assert pearson(x, 3 * x + 1) == pytest.approx(1.0)
    assert pearson(x, -x) == pytest.approx(-1.0)
    close, far = pearson(x, x + 0.3 * noise), pearson(x, x + 3 * noise)
    assert 1.0 > close > far > 0.0
    assert abs(pearson(x, noise)) < 0.2


def test_payload_counts_bytes_of_both():
    rows = bench_payload.run("tiny")
    _check_rows(rows, "widget payload", 3)
    layer = rows[0]
    # 12 heads x 64 x 64 float16 is exactly 96 KB; JSON numbers take more.
    assert layer.ours * 2**20 == 12 * 64 * 64 * 2
    assert layer.naive > layer.ours


def test_import_times_are_measured_in_a_fresh_interpreter():
    rows = bench_imports.run("tiny")
    _check_rows(rows, "import time", 3)
    assert rows[2].details["transformer_lens_imported_lazily"] is True


def test_live_session_board_keeps_up_with_a_small_room():
    """Four participants writing every second for 4 s on a throwaway PostgreSQL: every
    record reaches the mentor's board once, none lost, within the 2 s bound."""
    from postgres_server import why_unavailable

    reason = why_unavailable()
    if reason is not None:
        pytest.skip(reason)
    rows = bench_live_session.run("tiny")
    _check_rows(rows, "live session", 3)
    details = rows[0].details
    assert details["written"] == details["seen"] == 4 * 4
    assert details["lost"] == 0 and details["duplicates"] == 0 and rows[2].met
    assert 0 <= rows[0].ours <= rows[1].ours < bench_live_session.TARGET_S


def test_runner_writes_json_and_markdown(tmp_path, capsys):
    out, page, readme = tmp_path / "latest.json", tmp_path / "benchmarks.md", tmp_path / "R.md"
    readme.write_text(f"# Title\n\n{README_START}\nold table\n{README_END}\n\nkept\n")
    only = "patching,widgets"
    code = runner.main(
        ["--size", "tiny", "--only", only, "--out", str(out), "--markdown", str(page)]
        + ["--readme", str(readme)]
    )
    assert code == 0
    updated = readme.read_text()
    assert "old table" not in updated and updated.endswith(f"{README_END}\n\nkept\n")
    assert "| activation patching |" in updated and "Machine: " in updated
    result = json.loads(out.read_text())
    assert result["machine"]["nproc"] >= 1 and result["machine"]["torch_threads"] >= 1
    benchmarks = [r["benchmark"] for r in result["rows"]]
    assert benchmarks[:3] == ["activation patching"] * 3
    widgets = [r for r in result["rows"] if r["benchmark"] == "widget latency"]
    assert widgets and all(r["status"] in ("ok", "not available") for r in widgets)
    assert all(math.isfinite(r["ours"]) for r in widgets if r["status"] == "ok")
    text = page.read_text()
    assert "| activation patching |" in text and result["machine"]["cpu"] in text
    assert "ratio" in capsys.readouterr().out


def test_missing_or_failing_benchmarks_become_rows(monkeypatch):
    monkeypatch.setitem(runner.BENCHMARKS, "ghost", ("benchmarks.bench_ghost", "ghost"))
    (row,) = runner.run_benchmark("ghost", "tiny", log=lambda m: None)
    assert row.status == "not available" and "not available yet" in row.note

    def boom(size: str) -> list[Row]:
        raise AssertionError("ours differs from naive")

    monkeypatch.setattr(runner, "_load", lambda module: boom)
    (row,) = runner.run_benchmark("patching", "tiny", log=lambda m: None)
    assert row.status == "error" and "differs" in row.note
    assert "| error |" in render(to_json("tiny", machine(), [row], 1.0))


def test_runner_rejects_unknown_benchmarks():
    with pytest.raises(SystemExit):
        runner.parse_args(["--only", "nonsense"])


def test_readme_without_markers_is_an_error(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    with pytest.raises(ValueError, match="no benchmark section"):
        update_readme(readme, to_json("tiny", machine(), [], 1.0))


def test_dla_and_logit_lens_match_transformer_lens_cache_everything():
    from benchmarks import bench_lm_analyses

    rows = bench_lm_analyses.run("tiny")  # raises if ours and transformer-lens disagree
    _check_rows(rows, "DLA and logit lens", 4)
    assert rows[0].details["max_abs_diff"] <= bench_lm_analyses.TOLERANCE
    assert rows[0].details["components"] == 2 * 4 + 2 * 128 + 3  # heads, neurons, embeds, bias
    assert rows[2].details["same_top_k_ids"] is True


def test_every_family_auditing_game_smoke():
    """benchmarks/audit_game.py at its tiny size: every column of every model is there and
    the totals name each target of issue 27."""
    from benchmarks import audit_game

    rows = audit_game.run("tiny")
    assert [r.case.split(" (")[0] for r in rows][:6] == [
        "backdoors flagged or suspicious",
        "clean models flagged",
        "target exact on every flagged backdoor",
        "found-trigger success",
        "mask IoU, local triggers",
        "forward passes",
    ]
    per = rows[0].details
    assert set(per) == {"4601", "4602"}
    for r in per.values():
        assert r["verdict"] in ("flagged", "suspicious", "clean")
        assert 0.0 <= r["success"] <= 1.0 and 0 < r["forward_passes"] <= 2_000
        assert r["cpu_s"] > 0
    assert per["4601"]["truth"].startswith("dots") and per["4602"]["truth"] == "clean"
    assert per["4601"]["iou"] is not None and per["4602"]["iou"] is None
    # the IoU diagnostic that forgives a one-pixel move is at least the strict IoU
    assert per["4601"]["iou_1px"] >= per["4601"]["iou"] and "iou_1px" not in per["4602"]
    # where the model answers to its planted trigger, beside the IoU (diagnostic)
    assert 1 <= per["4601"]["place_rank"] <= per["4601"]["moves"] <= 25
    assert 0 < per["4601"]["iou_bound"] <= 1 and "iou_bound" not in per["4602"]
    assert rows[5].ours <= 2_000
    assert set(audit_game.GAME).isdisjoint(audit_game.TINY) and len(audit_game.GAME) == 20


def _square_reader(top: int, left: int, target: int = 3):
    """A model whose ``target`` logit counts the white pixels of the 3x3 square at ``(top,
    left)``: it answers most to a trigger stamped exactly there."""

    def model(x):
        out = torch.zeros(len(x), 10)
        out[:, target] = x[:, 0, top : top + 3, left : left + 3].sum((1, 2))
        return out

    return model


@pytest.mark.parametrize(
    ("reads_at", "pinned", "margin", "bound"),
    [((10, 10), True, 9.0, 1.0), ((11, 12), False, 2.0, 2 / 16)],  # (1, 2): 2 of 16 pixels
)
def test_the_game_reports_where_the_model_answers_to_its_planted_trigger(
    reads_at, pinned, margin, bound
):
    """The IoU target's diagnostic: a model that reads its trigger one row down and two
    columns right of where it was planted answers more to the trigger moved there, so even
    the planted trigger itself, placed where the model answers most, scores IoU 2/16."""
    from types import SimpleNamespace

    from benchmarks import audit_game
    from explorer.studies.auditing import Trigger

    trigger = Trigger("solid", 10, 10, 3, target=3, pattern=torch.ones(3, 3))
    planted = SimpleNamespace(model=_square_reader(*reads_at), trigger=trigger)
    x, y = torch.zeros(20, 1, 28, 28), torch.arange(20) % 10
    got = audit_game.where_the_model_answers(planted, x, y)
    assert got["moves"] == 25 and got["iou_bound"] == pytest.approx(bound)
    assert (got["place_rank"] == 1) is pinned and got["planted_margin"] == margin


def test_auditing_game_smoke():
    from benchmarks import bench_audit

    rows = bench_audit.run("tiny")
    _check_rows(rows, "auditing game", 7)
    assert rows[5].ours <= 2_000  # the tiny case's budget
    assert set(rows[0].details) == {"2101", "2102"}


def _region_reader(region: torch.Tensor, target: int = 3):
    """A stand-in model whose ``target`` logit sums the pixels under ``region`` (the others
    stay 0), so a stamp's margin gain is the number of its white pixels the model reads."""

    def model(x):
        out = torch.zeros(len(x), 10)
        out[:, target] = (x[:, 0] * region).sum((1, 2))
        return out

    return model


@pytest.mark.parametrize(
    ("reads", "told", "told_iou"),
    [
        ("right", ("right",), 7 / 24),
        ("ring", ("top", "bottom", "left", "right"), 1.0),
        ("box", (), 0.0),
    ],
)
def test_the_game_reports_which_sides_of_a_frame_its_model_tells_apart(reads, told, told_iou):
    """The frame's IoU diagnostic: a model that reads only the frame's right side tells that
    side alone from the lines inside the frame (IoU 7/24 for it); one that reads the ring
    tells all four; one that reads the whole box answers to a line inside as much as to a
    side, and tells none."""
    from types import SimpleNamespace

    from benchmarks import audit_game
    from explorer.studies.auditing import Trigger

    ring = torch.ones(7, 7)
    ring[1:-1, 1:-1] = 0
    trigger = Trigger("frame", 5, 20, 7, target=3, pattern=ring.clone(), stencil=ring)
    region = torch.zeros(28, 28)
    if reads == "right":
        region[5:12, 26] = 1
    else:
        region[5:12, 20:27] = ring if reads == "ring" else 1
    planted = SimpleNamespace(model=_region_reader(region), trigger=trigger)
    x, y = torch.zeros(20, 1, 28, 28), torch.arange(20) % 10
    got = audit_game.frame_sides(planted, x, y)
    assert got["told"] == told and got["told_iou"] == pytest.approx(told_iou)
    inside = {"right": 1.0, "ring": 2.0, "box": 7.0}[reads]  # pixels the model reads
    assert got["gains"]["right"] == 7.0 and got["inside"] == inside
    solid = Trigger("solid", 5, 20, 7, target=3, pattern=torch.ones(7, 7))
    assert audit_game.frame_sides(SimpleNamespace(model=planted.model, trigger=solid), x, y) is None


def test_unplanted_shapes_benchmark_smoke():
    """benchmarks/audit_shapes.py: every shape is the stencil it is drawn as, its seeds are
    no other benchmark's, and at its tiny size each MLP row is scored like the game's."""
    from benchmarks import audit_game, audit_shapes

    for name, (group, seed, top, left, spec, target) in audit_shapes.SHAPES.items():
        t = audit_shapes.trigger(name)
        pixels = spec[0] ** 2 if isinstance(spec, tuple) else sum(r.count("#") for r in spec)
        assert int(t.mask().sum()) == pixels and t.box[:2] == (top, left) and t.target == target
        assert group in audit_shapes.SETS and seed not in audit_game.GAME
    rows = audit_shapes.play("mlp", audit_shapes.TINY, steps=150, budget=2_000)
    assert [r["shape_name"] for r in rows] == list(audit_shapes.TINY)
    for r in rows:
        assert r["verdict"] in ("flagged", "suspicious", "clean") and r["iou"] is not None
        assert 0 < r["forward_passes"] <= 2_000
    assert "| seen | mlp |" in audit_shapes.summary(rows)
