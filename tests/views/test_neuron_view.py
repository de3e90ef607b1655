"""NeuronView without a browser: neuron changes send the right examples, histogram, effects."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import traitlets

from explorer.analysis import activation_histogram, run_with_cache, top_k_examples
from explorer.analysis.units import Neuron
from explorer.data import repeated_tokens
from explorer.views import NeuronView


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    return torch.rand(60, 1, 28, 28, generator=g), torch.randint(0, 10, (60,), generator=g)


def _read_by_next(model, x, layer, unit, read="logits"):
    """How much each output (or each unit of hook ``read``) moves per unit of ``unit`` of
    ``layer`` set alone (everything else zeroed, a channel at every position): its outgoing
    weights, measured through hooks."""
    seen, moved = {}, []

    def record(act, hook):
        seen["act"] = act

    for value in (1.0, 0.0):

        def only(post, hook, value=value):
            post = torch.zeros_like(post)
            post[:, unit] = value
            return post

        hooks = [(f"blocks.{layer}.mlp.hook_post", only)]
        with torch.no_grad():
            logits = model.run_with_hooks(
                x[:1], hooks + ([(read, record)] if read != "logits" else [])
            )
        moved.append(seen.get("act", logits))
    return (moved[0] - moved[1])[0]


def _incoming(model, unit, conv=False):
    """The weights computing ``unit`` of block 0, measured: its pre-activation on one-pixel
    images minus on the blank image (a conv: the kernel read from one centered pixel)."""
    name = "blocks.0.mlp.hook_pre"
    if not conv:  # a Linear: one image per pixel
        pixels = torch.cat([torch.zeros(1, 784), torch.eye(784)]).reshape(-1, 1, 28, 28)
        pre = run_with_cache(model, pixels, hooks=[name])[name][:, unit]
        return (pre[1:] - pre[0]).reshape(28, 28)
    dot = torch.zeros(2, 1, 28, 28)
    dot[1, 0, 14, 14] = 1.0
    pre = run_with_cache(model, dot, hooks=[name])[name][:, unit]
    return (pre[1] - pre[0])[13:16, 13:16].flip(0, 1)  # out[p] = sum K[i] x[p + i - 1]


def test_image_neuron_shows_its_top_images_weights_histogram_and_effects(mnist_mlp, images):
    x, _ = images
    view = NeuronView(mnist_mlp, x, n=5)
    view.neuron = 7
    top = top_k_examples(mnist_mlp, x, layer=0, n=8)
    assert view.example_ids == top.example[7, :5].tolist()
    assert np.allclose(view.top_values.numpy(), top.values[7, :5].numpy())
    shown = view.top_images.numpy()
    assert shown.shape == (5, 28, 28)
    assert np.abs(shown - x[top.example[7, :5], 0].numpy()).max() <= 1 / 255 + 1e-6
    w = _incoming(mnist_mlp, 7).numpy()
    assert np.abs(view.weight_image.numpy() - w).max() < 1e-3
    hist = activation_histogram(mnist_mlp, x, unit=Neuron(0, 7), bins=40)
    assert view.hist_counts.numpy().tolist() == hist.counts.tolist()
    outgoing = _read_by_next(mnist_mlp, x, 0, 7, read="blocks.1.mlp.hook_pre")
    values = view.effect_values.numpy()
    assert values[0] == pytest.approx(float(outgoing.max()), abs=1e-6)
    assert values[-1] == pytest.approx(float(outgoing.min()), abs=1e-6)
    assert view.effect_labels[0] == f"neuron 1.{int(outgoing.argmax())}"
    assert view.error == ""


def test_last_layer_effects_are_on_the_classes(mnist_mlp, images):
    view = NeuronView(mnist_mlp, images, n=3)
    view.layer = 1
    assert view.effect_title == "weights to the output classes"
    outgoing = _read_by_next(mnist_mlp, images[0], 1, view.neuron)
    # 10 classes: each listed once, strongest first
    assert sorted(view.effect_labels) == sorted(f"class {i}" for i in range(10))
    assert np.allclose(view.effect_values.numpy(), outgoing.sort(descending=True).values.numpy())
    assert view.weight_image["shape"] == [0]  # deeper layers read neurons, not pixels


def test_changing_to_a_narrower_layer_keeps_the_neuron_valid(mnist_mlp, images):
    view = NeuronView(mnist_mlp, images[0], n=3)
    view.neuron = 15
    view.layer = 1  # 12 neurons
    assert view.neuron == 11 and view.error == ""
    with pytest.raises(traitlets.TraitError, match=r"valid neurons are 0..11"):
        view.neuron = 12


def test_text_neuron_colours_each_token_by_its_activation(mlp_transformer):
    data = repeated_tokens(20, 10, 30, seed=0)
    view = NeuronView(mlp_transformer, data, n=4, context=6)
    view.layer, view.neuron = 1, 9
    top = top_k_examples(mlp_transformer, data, layer=1, n=8)
    name = mlp_transformer.hook_name("post", 1)
    acts = run_with_cache(mlp_transformer, data, hooks=[name])[name][..., 9]
    windows = view.example_acts.numpy()
    for i, (example, start) in enumerate(zip(view.example_ids, view.example_starts)):
        assert example == int(top.example[9, i])
        width = windows.shape[1]
        assert np.abs(windows[i] - acts[example, start : start + width].numpy()).max() < 1e-2
        assert view.example_tokens[i] == mlp_transformer.to_str_tokens(
            data[example, start : start + width]
        )
        assert start <= view.example_positions[i] < start + width


def test_text_neuron_effect_is_its_direct_logit_effect(mlp_transformer):
    view = NeuronView(mlp_transformer, repeated_tokens(8, 6, 30), n=2)
    view.neuron = 3
    from explorer.analysis import neuron_logit_weights

    direct = neuron_logit_weights(mlp_transformer, units="neuron 0.3").values[0]
    assert view.effect_title.startswith("direct effect on the logits")
    assert view.effect_values.numpy()[0] == pytest.approx(float(direct.max()), abs=1e-5)
    assert view.effect_labels[0] == str(int(direct.argmax()))


def test_attention_only_models_are_refused(attn_model, repeated):
    with pytest.raises(ValueError, match="attention-only"):
        NeuronView(attn_model, repeated)


def test_bad_data_is_refused_with_what_is_accepted(mnist_mlp):
    with pytest.raises(TypeError, match="ImageData"):
        NeuronView(mnist_mlp, [1, 2, 3])


def test_cached_and_streamed_histograms_agree(mnist_mlp, images):
    cached = NeuronView(mnist_mlp, images[0], n=2)
    streamed = NeuronView(mnist_mlp, images[0], n=2, activation_budget_mb=0.0)
    for layer, neuron in [(0, 3), (1, 7)]:
        cached.layer = streamed.layer = layer
        cached.neuron = streamed.neuron = neuron
        assert cached.hist_counts["data"] == streamed.hist_counts["data"]
        assert np.allclose(cached.hist_edges.numpy(), streamed.hist_edges.numpy())
    cost = []
    for view in (cached, streamed):
        view.layer, view.neuron = 0, 3
        passes = mnist_mlp.spent.forward
        view.neuron = 5  # the same layer: kept activations are read, streamed ones recomputed
        cost.append(mnist_mlp.spent.forward - passes)
    assert cost[1] > cost[0], cost  # both run the neuron's ablation; only streaming reruns


def test_conv_channels_show_kernels_and_their_summed_outgoing_weights(mnist_cnn, images):
    view = NeuronView(mnist_cnn, images[0], n=3)
    view.neuron = 2
    first_conv = _incoming(mnist_cnn, 2, conv=True)  # one input channel: the kernel is its sum
    assert np.abs(view.weight_image.numpy() - first_conv.numpy()).max() < 1e-3  # 3x3 kernel
    view.layer, view.neuron = 1, 5
    per_class = _read_by_next(mnist_cnn, images[0], 1, 5)  # every position: the sum
    assert np.allclose(
        view.effect_values.numpy(), per_class.sort(descending=True).values.numpy(), atol=1e-5
    )


def _class_drop(model, x, layer, unit):
    """The mean change of each class output when ``unit`` of ``layer`` (a neuron, or a
    conv channel at every position) is zeroed: clean minus ablated, by hand."""

    def zero(act, hook):
        act = act.clone()
        act[:, unit] = 0.0
        return act

    with torch.no_grad():
        clean = model(x)
        ablated = model.run_with_hooks(x, [(f"blocks.{layer}.mlp.hook_post", zero)])
    return (clean - ablated).mean(0)


def test_image_neuron_effect_on_the_classes_is_its_zero_ablation(mnist_mlp, images):
    x, _ = images
    view = NeuronView(mnist_mlp, x, n=2, ablation_examples=50)
    view.neuron = 4
    drop = _class_drop(mnist_mlp, x[:50], 0, 4)
    assert view.ablation_title.startswith("effect on the class outputs")
    assert "50 inputs" in view.ablation_title
    assert view.ablation_labels[0] == f"class {int(drop.argmax())}"
    assert np.allclose(
        view.ablation_values.numpy(), drop.sort(descending=True).values.numpy(), atol=1e-5
    )
    view.layer, view.neuron = 1, 3  # the last hidden layer: drop = mean activation x weight
    name = "blocks.1.mlp.hook_post"
    act = run_with_cache(mnist_mlp, x[:50], hooks=[name])[name][:, 3]

    expected = act.mean() * _read_by_next(mnist_mlp, x, 1, 3)
    drop = _class_drop(mnist_mlp, x[:50], 1, 3)
    assert torch.allclose(drop, expected, atol=1e-5)
    assert np.allclose(
        view.ablation_values.numpy(), drop.sort(descending=True).values.numpy(), atol=1e-5
    )


def test_conv_channel_effect_on_the_classes_zeroes_the_whole_channel(mnist_cnn, images):
    x, _ = images
    view = NeuronView(mnist_cnn, x, n=2, ablation_examples=20)
    view.layer, view.neuron = 1, 5  # channel 2 never fires on these images: no effect
    drop = _class_drop(mnist_cnn, x[:20], 1, 5).sort(descending=True).values
    assert (drop.abs() > 1e-3).any()  # zeroing the channel changes the classes
    assert np.allclose(view.ablation_values.numpy(), drop.numpy(), atol=1e-5)


def test_text_neurons_have_no_ablation_table(mlp_transformer):
    view = NeuronView(mlp_transformer, repeated_tokens(8, 6, 30), n=2)
    assert view.ablation_values["shape"] == [0] and view.ablation_title == ""


def test_the_view_knows_which_neurons_of_the_layer_never_fire():
    import explorer
    from explorer.data import load_mnist
    from explorer.views import NeuronView

    mlp = explorer.load("shipped:quickstart-mnist-mlp")
    view = NeuronView(mlp, load_mnist().test_images[:300])
    assert view.dead_units and view.fires == (0 not in view.dead_units)
    view.neuron = view.dead_units[0]
    assert view.fires is False
    assert float(view.top_values.numpy().max()) == 0.0
    view.layer = 1
    top = view.top_examples(1)
    assert view.dead_units == [int(u) for u in (~top.fires()).nonzero().flatten()]
