from __future__ import annotations

import pytest
import torch

from explorer.analysis import activation_histogram, top_k_examples
from explorer.analysis.units import Neuron


def test_top_k_streamed_equals_full_cache(mlp_transformer):
    tokens = torch.randint(0, 30, (23, 12), generator=torch.Generator().manual_seed(0))
    top = top_k_examples(mlp_transformer, tokens, layer=1, n=5, batch_size=4)
    _, cache = mlp_transformer.cache_pass(tokens)
    acts = cache["blocks.1.mlp.hook_post"].reshape(-1, 64)  # [(example pos), unit]
    expected = acts.topk(5, dim=0).values.T
    assert torch.allclose(top.values, expected, atol=1e-6)
    # the reported (example, position) hold those values
    got = cache["blocks.1.mlp.hook_post"][top.example, top.position, torch.arange(64)[:, None]]
    assert torch.allclose(got, top.values, atol=1e-6)
    assert top.n_examples == 23


def test_top_k_from_a_generator_of_batches(mnist_mlp):
    images = torch.rand(40, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    batches = (images[i : i + 7] for i in range(0, 40, 7))
    top = top_k_examples(mnist_mlp, batches, layer=0, n=3)
    _, cache = mnist_mlp.cache_pass(images)
    assert torch.allclose(
        top.values, cache["blocks.0.mlp.hook_post"].topk(3, dim=0).values.T, atol=1e-6
    )
    assert (top.position == 0).all()


def test_top_k_smallest_and_conv_channels(mnist_cnn):
    images = torch.rand(9, 1, 28, 28)
    top = top_k_examples(mnist_cnn, images, layer=1, n=2, largest=False, hooks="pre")
    _, cache = mnist_cnn.cache_pass(images)
    per_channel = cache["blocks.1.mlp.hook_pre"].amax(dim=(2, 3))  # [b, c]
    assert torch.allclose(top.values, per_channel.topk(2, dim=0, largest=False).values.T, atol=1e-6)


def test_histogram_counts_every_activation_and_per_class(mnist_mlp):
    images, labels = torch.rand(30, 1, 28, 28), torch.arange(30) % 3
    hist = activation_histogram(
        mnist_mlp, images, unit=Neuron(0, 2), bins=10, labels=labels, batch_size=8
    )
    _, cache = mnist_mlp.cache_pass(images)
    values = cache["blocks.0.mlp.hook_post"][:, 2]
    assert hist.counts.sum() == 30 and hist.by_class.shape == (3, 10)
    assert torch.equal(hist.by_class.sum(0), hist.counts)
    assert hist.edges[0] == pytest.approx(values.min().item()) and hist.edges[-1] == pytest.approx(
        values.max().item()
    )


def test_bad_neuron_inputs(mnist_mlp, attn_model):
    images = torch.rand(4, 1, 28, 28)
    with pytest.raises(ValueError, match="layer 2 out of range"):
        top_k_examples(mnist_mlp, images, layer=2)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        top_k_examples(mnist_mlp, images, layer=0, n=0)
    with pytest.raises(ValueError, match="empty"):
        top_k_examples(mnist_mlp, iter([]), layer=0)
    with pytest.raises(ValueError, match="attention-only"):
        top_k_examples(attn_model, torch.zeros(1, 4, dtype=torch.long), layer=0)
    with pytest.raises(ValueError, match="neuron 16 out of range"):
        activation_histogram(mnist_mlp, images, unit=Neuron(0, 16))
    with pytest.raises(ValueError, match="NaN"):
        top_k_examples(mnist_mlp, images * float("nan"), layer=0)
    with pytest.raises(ValueError, match="labels has 3 entries"):
        activation_histogram(
            mnist_mlp, images, unit=Neuron(0, 0), labels=torch.zeros(3, dtype=torch.long)
        )


def test_a_planted_dead_unit_is_marked_in_the_table_its_repr_and_ranking():
    from explorer.models import zoo

    mlp = zoo.mnist_mlp(hidden=(16,), seed=2)
    images = torch.rand(30, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    alive = top_k_examples(mlp, images, layer=0, n=3)
    assert alive.dead_units == () and "no dead units" in repr(alive)
    with torch.no_grad():
        mlp.model.module[1].bias[5] = -1e4  # unit 5 can never fire on images in 0..1
    top = top_k_examples(mlp, images, layer=0, n=3)
    assert top.dead_units == (5,)
    assert float(top.values[5].max()) == 0.0  # its "top" examples are ties at zero
    assert "1 dead (never > 0, top examples are ties): [5]" in repr(top)
    ranked = top.ranked()
    assert sorted(ranked) == [u for u in range(16) if u != 5]
    best = [float(top.values[u, 0]) for u in ranked]
    assert best == sorted(best, reverse=True)
    bottom = top_k_examples(mlp, images, layer=0, n=3, largest=False)
    assert bottom.dead_units == () and "bottom 3" in repr(bottom)
    with pytest.raises(ValueError, match="cannot say which units fire"):
        bottom.fires()
