"""Verdicts: the decision rule, JSON round trip, and escaped HTML."""

from __future__ import annotations

import json

import pytest

from explorer.hypotheses import Verdict
from explorer.hypotheses.verdict import decide


def make(**changes):
    fields = dict(
        hypothesis_id="abc",
        claim="<script>alert(1)</script> & friends",
        status="supported",
        value=0.9,
        ci_low=0.85,
        ci_high=0.95,
        confidence=0.95,
        threshold=0.5,
        direction="above",
        measure="auroc of neuron 0.3",
        baseline=0.5,
        baseline_source="mean of 2 random neuron sets",
        n_examples=20,
        split="held-out: 20 examples",
        model_name="m",
        model_fingerprint="f00",
        n_boot=100,
        seed=0,
        baseline_units=[["neuron 0.1"], ["neuron 0.2"]],
        baseline_values=[0.4, 0.6],
        details={"concept_mean": 2},
    )
    fields.update(changes)
    return Verdict(**fields)


@pytest.mark.parametrize(
    ("low", "high", "direction", "status"),
    [
        (0.6, 0.7, "above", "supported"),
        (0.1, 0.4, "above", "refuted"),
        (0.4, 0.6, "above", "inconclusive"),
        (0.5, 0.6, "above", "inconclusive"),  # touching the threshold is not clearing it
        (0.1, 0.4, "below", "supported"),
        (0.6, 0.7, "below", "refuted"),
        (0.4, 0.6, "below", "inconclusive"),
    ],
)
def test_decide(low, high, direction, status):
    assert decide(low, high, 0.5, direction) == status


def test_json_round_trip_is_exact_and_strict():
    v = make()
    again = Verdict.from_json(v.to_json())
    assert again == v
    assert again.baseline_units == (("neuron 0.1",), ("neuron 0.2",))
    assert json.loads(v.to_json())["details"] == {"concept_mean": 2.0}
    with pytest.raises(ValueError, match="unknown verdict fields"):
        Verdict.from_dict({**v.to_dict(), "pickle": "x"})
    with pytest.raises(ValueError, match="unknown verdict status"):
        make(status="maybe")


def test_beats_baseline_and_summary():
    assert make().beats_baseline is True
    assert make(baseline=0.9).beats_baseline is False
    assert make(baseline=None).beats_baseline is None
    assert make(direction="below", ci_high=0.95, baseline=0.99).beats_baseline is True
    text = make().summary()
    assert text.startswith(
        "supported: auroc of neuron 0.3 = 0.9 [0.85, 0.95] (95% CI); supported needs the CI > 0.5"
    )
    assert "baseline 0.5" in text and "@f00" in text


def test_the_rule_and_the_baseline_distribution_are_in_the_verdict():
    v = make(
        baseline=0.5, baseline_p95=0.88, baseline_n_sets=20, baseline_source="20 random neuron sets"
    )
    assert (
        "supported needs the CI > 0.5 and > 0.88 (95th pct of 20 random neuron sets, mean 0.5)"
        in v.summary()
    )
    assert "95th pct" in repr(v) and "rule" in v._repr_html_()
    assert v.beats_baseline is False  # judged against the 95th percentile, not the mean
    record = v.to_dict()
    assert (record["baseline_p95"], record["baseline_n_sets"], record["version"]) == (
        0.88,
        20,
        "1.3",
    )
    assert Verdict.from_json(v.to_json()) == v
    below = make(
        direction="below",
        ci_high=0.2,
        baseline=0.5,
        baseline_p95=0.3,
        baseline_n_sets=20,
        baseline_source="20 random neuron sets",
    )
    assert "< 0.3 (5th pct of 20 random neuron sets" in below.summary()


def test_a_verdict_written_before_the_rule_still_loads():
    old = make().to_dict()
    for name in ("baseline_p95", "baseline_n_sets"):
        del old[name]
    old["version"] = "1.2"
    v = Verdict.from_dict(old)
    assert (v.baseline_p95, v.baseline_n_sets, v.status) == (None, 0, "supported")
    assert v.beats_baseline is True  # an old record is judged by its mean, as it was


@pytest.mark.parametrize(
    ("low", "high", "cutoff", "status"),
    [
        (0.6, 0.7, 0.55, "supported"),
        (0.6, 0.7, 0.65, "inconclusive"),  # above the threshold, not above random sets' p95
        (0.6, 0.7, None, "inconclusive"),  # nothing to compare with
        (0.2, 0.3, 0.1, "refuted"),
        (0.4, 0.6, 0.1, "inconclusive"),
    ],
)
def test_judge_needs_the_threshold_and_the_baseline(low, high, cutoff, status):
    from explorer.hypotheses import judge

    assert judge(low, high, 0.5, "above", cutoff)[0] == status


def test_html_escapes_user_text():
    html = make()._repr_html_()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; friends" in html
