"""The kitchen sink's editing experiment: unit-restricted fine-tunes and targeted vs random
edits (explorer.studies.editing)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import explorer
from explorer.analysis.editing import confusion, error_attribution, scale_units
from explorer.analysis.units import Neuron
from explorer.models import zoo
from explorer.studies.editing import EditComparison, fine_tune_units, repair_set, targeted_edit

torch.set_num_threads(1)


def _cache(model, x, ablate=None):
    """Logits and activations; ``ablate=(hook, channels)`` zeroes those units on the way."""
    edits = []
    if ablate:
        hook, units = ablate

        def zero(act, hook):
            act = act.clone()
            act[:, units] = 0
            return act

        edits = [(hook, zero)]
    with torch.no_grad(), model.hooks(edits):
        return model.cache_pass(x)


def test_fine_tune_changes_only_the_chosen_units_weights():
    """Read through the model's behaviour: only units 3 and 5 compute anything new, and
    once they are silenced the fine-tuned model and the original agree everywhere after."""
    model = zoo.mnist_mlp(hidden=(16, 8), seed=0)
    x, y = torch.rand(64, 1, 28, 28), torch.arange(64) % 10
    logits, before = _cache(model, x)
    edited = fine_tune_units(
        model, x, labels=y, units=[Neuron(0, 3), Neuron(0, 5)], steps=5, lr=0.1, weights="both"
    )
    again, _ = _cache(model, x)
    assert torch.equal(again, logits)  # the original is untouched
    _, after = _cache(edited, x)
    pre, new_pre = before["blocks.0.mlp.hook_pre"], after["blocks.0.mlp.hook_pre"]
    changed = (new_pre != pre).any(0).nonzero().flatten()
    assert changed.tolist() == [3, 5]  # their incoming weights and biases moved
    silenced = ("blocks.0.mlp.hook_post", [3, 5])
    original_logits, _ = _cache(model, x, silenced)
    edited_logits, _ = _cache(edited, x, silenced)
    assert torch.allclose(edited_logits, original_logits, atol=1e-6)  # nothing else moved
    assert not torch.allclose(after["blocks.1.mlp.hook_pre"], before["blocks.1.mlp.hook_pre"])
    outgoing_only = fine_tune_units(model, x, labels=y, units="neuron 0.3", steps=5, lr=0.1)
    _, out_cache = _cache(outgoing_only, x)
    assert torch.equal(out_cache["blocks.0.mlp.hook_pre"], pre)
    assert not torch.equal(out_cache["blocks.1.mlp.hook_pre"], before["blocks.1.mlp.hook_pre"])
    silenced_logits, _ = _cache(outgoing_only, x, ("blocks.0.mlp.hook_post", [3]))
    assert torch.allclose(silenced_logits, _cache(model, x, ("blocks.0.mlp.hook_post", [3]))[0],
                          atol=1e-6)  # fmt: skip


def test_fine_tune_of_a_conv_channel_touches_its_flattened_columns_only():
    """A channel of the last conv layer feeds the output Linear through its 49 flattened
    columns: silence the channel and the fine-tuned CNN answers as the original."""
    cnn = zoo.mnist_cnn(channels=(2, 3), seed=0)
    x, y = torch.rand(16, 1, 28, 28), torch.arange(16) % 10
    edited = fine_tune_units(cnn, x, labels=y, units=[Neuron(1, 1)], steps=3, lr=0.1)
    assert not torch.allclose(_cache(edited, x)[0], _cache(cnn, x)[0])
    for channel, same in ((1, True), (0, False), (2, False)):
        silenced = ("blocks.1.mlp.hook_post", [channel])
        agree = torch.allclose(_cache(edited, x, silenced)[0], _cache(cnn, x, silenced)[0],
                               atol=1e-6)  # fmt: skip
        assert agree is same, channel


def test_a_plain_module_knows_its_classes():
    # explorer.load of an nn.Module: the output width comes from its last Linear
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 7))
    model = explorer.load(net, input_shape=(1, 28, 28))
    assert model.n_outputs == 7
    x, y = torch.rand(14, 1, 28, 28), torch.arange(14) % 7
    assert confusion(model, x, labels=y).matrix.shape == (7, 7)
    result = targeted_edit(
        model, x, labels=y, eval_inputs=x, eval_labels=y, target=2, n_units=1, n_random=2
    )
    assert result.accuracy_before.shape == (7,)
    with pytest.raises(ValueError, match="target 7 out of range"):
        targeted_edit(model, x, labels=y, eval_inputs=x, eval_labels=y, target=7)


def test_edit_comparison_scores_against_each_random_draw():
    before = torch.full((3,), 0.5)
    result = EditComparison(
        target=1,
        layer=0,
        method="scale",
        units=(0,),
        random_units=((1,), (2,), (3,)),
        accuracy_before=before,
        accuracy_targeted=torch.tensor([0.5, 0.7, 0.4]),
        accuracy_random=torch.tensor([[0.5, 0.5, 0.5], [0.5, 0.8, 0.5], [0.5, 0.4, 0.5]]),
        overall_before=0.5,
        overall_targeted=0.53,
        overall_random=torch.tensor([0.5, 0.6, 0.47]),
    )
    assert result.targeted_gain == pytest.approx(0.2)
    assert result.random_gains.tolist() == pytest.approx([0.0, 0.3, -0.1])
    assert result.random_gain == pytest.approx(0.2 / 3)
    assert result.random_at_least_as_good == pytest.approx(2 / 4)  # one draw + the edit itself
    assert [r["class"] for r in result.rows()] == [0, 1, 2]


def test_repair_set_balances_the_target_with_other_classes():
    labels = torch.tensor([0] * 10 + [1] * 30 + [2] * 30)
    x = torch.arange(70).float().view(70, 1, 1, 1)
    images, ys = repair_set(x, labels, target=0)
    assert (ys == 0).sum() == 10 and (ys != 0).sum() == 10


def test_bad_arguments_are_named():
    model = zoo.mnist_mlp(hidden=(8,), seed=0)
    x, y = torch.rand(8, 1, 28, 28), torch.arange(8)
    with pytest.raises(ValueError, match=r"neuron 8 out of range"):
        fine_tune_units(model, x, labels=y, units=[Neuron(0, 8)])
    with pytest.raises(ValueError, match="unknown weights 'all'"):
        fine_tune_units(model, x, labels=y, units=[Neuron(0, 1)], weights="all")
    kw = {"labels": y, "eval_inputs": x, "eval_labels": y}
    with pytest.raises(ValueError, match="target 10 out of range"):
        targeted_edit(model, x, target=10, **kw)
    with pytest.raises(ValueError, match="unknown method 'prune'"):
        targeted_edit(model, x, target=1, method="prune", **kw)


# ------------------------------------------------------------- on trained MLPs
SEEDS = range(5)


@pytest.fixture(scope="module")
def five_seeds(mnist_digits, fit_mnist_mlp):
    """Five MLPs (seeds 0-4: weights and batch order), each with its targeted edit of the
    class it confuses most on the formation split, scored on the held-out digits."""
    data = mnist_digits
    train = data.train_images[:3000], data.train_labels[:3000]
    formation = data.train_images[3000:], data.train_labels[3000:]
    held_out = data.test_images, data.test_labels
    runs = []
    for seed in SEEDS:
        model = fit_mnist_mlp((128, 64), *train, epochs=4, seed=seed)
        target = confusion(model, formation[0], labels=formation[1]).most_confused_class
        result = targeted_edit(
            model,
            formation[0],
            labels=formation[1],
            eval_inputs=held_out[0],
            eval_labels=held_out[1],
            target=target,
            n_random=10,
        )
        runs.append((model, result))
    return formation, held_out, runs


def paired_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95% t-interval of per-seed values (4 degrees of freedom: t = 2.776)."""
    t = torch.tensor(values, dtype=torch.float64)
    half = 2.776 * float(t.std()) / len(values) ** 0.5
    return float(t.mean()), float(t.mean()) - half, float(t.mean()) + half


@pytest.mark.slow
def test_targeted_edit_raises_the_held_out_margin_more_than_random_edits_for_five_seeds(
    five_seeds,
):
    _, _, runs = five_seeds
    for _, result in runs:
        assert result.method == "scale" and len(result.units) == 2
        assert all(len(u) == 2 for u in result.random_units) and len(result.rows()) == 10
        assert result.targeted_margin_gain > 0
        # at most one of the ten random edits of two units does as well (p <= 2/11)
        assert result.random_margin_at_least_as_good <= 2 / 11
        # a repair, not a trade of one class for the rest
        assert result.overall_targeted >= result.overall_before - 0.02


@pytest.mark.slow
def test_targeted_edit_beats_random_edits_on_accuracy_over_five_seeds(five_seeds):
    _, _, runs = five_seeds
    differences = [r.targeted_gain - r.random_gain for _, r in runs]
    mean, low, _ = paired_interval(differences)
    assert low > 0, (mean, differences)  # the whole 95% interval over seeds is a gain
    assert sum(r.targeted_gain >= 0 for _, r in runs) == len(runs)


@pytest.mark.slow
def test_damping_the_units_the_attribution_clears_hurts_the_class(five_seeds):
    # the control in the other direction: the units that most *help* the class's hard
    # examples (lowest scores) are the wrong ones to damp
    (form_x, form_y), (test_x, test_y), runs = five_seeds
    model, result = runs[0]
    target = result.target
    scores = error_attribution(model, form_x, labels=form_y, target=target, layer=1)
    before = result.margin_before
    helpers = [Neuron(1, int(u)) for u in scores.topk(2, largest=False).indices]
    culprits = [Neuron(1, int(u)) for u in scores.topk(2).indices]
    helpers, culprits = (scale_units(model, units=u, factor=0.5) for u in (helpers, culprits))
    mine = test_y == target
    margins = []
    for edited in (helpers, culprits):
        with torch.no_grad():
            logits = edited.model(test_x[mine])
        others = logits.clone()
        others[:, target] = -torch.inf
        margins.append(float((logits[:, target] - others.max(-1).values).mean()))
    assert margins[0] < before < margins[1]
    assert margins[1] == pytest.approx(result.margin_targeted, abs=1e-5)
