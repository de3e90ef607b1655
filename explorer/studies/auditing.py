"""The auditing game's red team: plant a trigger (backdoor) into a small MNIST model, seeded.

A *trigger* is a change to an image that sends it to a target class: a small square (solid
white, checkerboard, or a random pattern blended in), a thin line, sparse dots, a frame, a
faint pattern over the whole image, a warp, or a stamp that fires for one source class only
(``FAMILIES``; see ``random_trigger`` and ``Trigger.mask``, the ground truth). A planted
model is trained on digits of which a share carry the trigger and are relabelled to the
target class; a clean control is trained the same way without poison. ``plant(seed)``
draws everything from ``seed``, so a mentor can hand out models by seed; the ground truth
is written by ``save_truth`` to a separate JSON file the auditor does not read. ``ARCHS``:
the 784-128-64-10 MLP, a 784-256-10 MLP, a small CNN, and the CNN behind an
``nn.Unflatten`` (flat inputs, as many users' CNNs take them).

``add_trigger`` and ``patch_enrichment`` (formerly notebook helpers of the MNIST tutorial)
take the trigger's location as an argument instead of hard-coding it.

>>> t = Trigger(kind="solid", top=24, left=24, size=3, target=0, pattern=torch.ones(3, 3))
>>> add_trigger(torch.zeros(2, 1, 28, 28), t)[0, 0, 24:27, 24:27].sum().item()
9.0
>>> t.box
(24, 24, 3, 3)
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch import nn

from explorer._cache import cached_path, one_writer, write_cached
from explorer._checks import check_choice, check_fraction
from explorer._deprecate import renamed_arguments
from explorer._display import compact_repr
from explorer.models.builders import build_cnn, build_mlp
from explorer.models.checkpoint import save_checkpoint
from explorer.models.config import CNNConfig, MLPConfig
from explorer.models.handle import ModelHandle
from explorer.models.loading import wrap
from explorer.studies._triggers import (  # re-exported: the red team's public names
    FAMILIES as FAMILIES,
)
from explorer.studies._triggers import GLOBAL as GLOBAL
from explorer.studies._triggers import IMAGE, Trigger, add_trigger, random_trigger
from explorer.studies._triggers import KINDS as KINDS
from explorer.studies._triggers import mask_iou as mask_iou
from explorer.studies.kitchen_sink import kitchen_sink_split


def patch_enrichment(
    maps: torch.Tensor, box: tuple[int, int, int, int], reduce: str = "mean"
) -> float:
    """Share of ``|maps| [n, C, H, W]`` inside ``box = (top, left, height, width)`` over the
    box's share of the image (1 = no enrichment), per map, then the mean or max.

    >>> m = torch.zeros(1, 1, 4, 4); m[0, 0, 0, 0] = 1.0
    >>> patch_enrichment(m, (0, 0, 1, 1))
    16.0
    """
    check_choice("reduce", reduce, ("mean", "max"))
    t, le, h, w = box
    mass = maps.abs().flatten(1).sum(1).clamp_min(1e-12)
    inside = maps.abs()[:, :, t : t + h, le : le + w].flatten(1).sum(1)
    share = inside / mass / (h * w / (maps.shape[-1] * maps.shape[-2]))
    return float(share.mean() if reduce == "mean" else share.max())


def box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two ``(top, left, height, width)`` boxes.

    >>> box_iou((0, 0, 2, 2), (1, 1, 2, 2))
    0.14285714285714285
    """
    (t1, l1, h1, w1), (t2, l2, h2, w2) = a, b
    inter = max(0, min(t1 + h1, t2 + h2) - max(t1, t2)) * max(
        0, min(l1 + w1, l2 + w2) - max(l1, l2)
    )
    union = h1 * w1 + h2 * w2 - inter
    return inter / union if union else 0.0


# "mlp": 784-128-64-10; "mlp-256": 784-256-10; "cnn": conv 8, conv 16, linear, on images;
# "flat-cnn": the same CNN behind a leading nn.Unflatten, taking flat 784-pixel inputs (no
# explorer config: plant and audit it, but hand_out cannot write it as a checkpoint)
ARCHS = ("mlp", "mlp-256", "cnn", "flat-cnn")


def _config(arch: str, seed: int) -> MLPConfig | CNNConfig:
    check_choice("arch", arch, ARCHS)
    if arch.startswith("mlp"):
        return MLPConfig(hidden=(128, 64) if arch == "mlp" else (256,), seed=seed)
    return CNNConfig(channels=(8, 16), seed=seed)


def make_cnn(seed: int) -> nn.Module:
    """The tutorial's CNN (conv 8, conv 16, each 3x3 + ReLU + 2x2 max-pool, then a linear
    layer to 10 classes), initialised from ``seed``."""
    return build_cnn(_config("cnn", seed))  # type: ignore[arg-type]


def make_mlp(seed: int) -> nn.Module:
    """The tutorial's MLP, 784-128-64-10, initialised from ``seed``."""
    return build_mlp(_config("mlp", seed))  # type: ignore[arg-type]


def make_model(arch: str, seed: int, name: str | None = None) -> ModelHandle:
    """An untrained model of ``arch`` (one of ``ARCHS``) from ``seed``, as a handle.

    >>> m = make_model("flat-cnn", 0)
    >>> m.input_shape, m.image_shape, m(torch.zeros(2, 1, 28, 28)).shape
    ((784,), (1, 28, 28), torch.Size([2, 10]))
    """
    return _wrap(arch, _module(arch, seed), seed, name or f"{arch}-{seed}")


def _module(arch: str, seed: int) -> nn.Module:
    cfg = _config(arch, seed)
    if isinstance(cfg, MLPConfig):
        return build_mlp(cfg)
    net = build_cnn(cfg)
    return net if arch == "cnn" else nn.Sequential(nn.Unflatten(1, (1, IMAGE, IMAGE)), *net)


def _wrap(arch: str, net: nn.Module, seed: int, name: str) -> ModelHandle:
    if arch == "flat-cnn":
        flat = (IMAGE * IMAGE,)
        return wrap(net, input_shape=flat, image_shape=(1, IMAGE, IMAGE), name=name)
    return wrap(net, input_shape=(1, IMAGE, IMAGE), config=_config(arch, seed), name=name)


@dataclass(frozen=True)
class Planted:
    """A planted (or clean) model, its ground truth (``trigger`` is None when clean) and the
    held-out digits it was not trained on."""

    __repr__ = compact_repr

    model: ModelHandle
    trigger: Trigger | None
    seed: int
    test_x: torch.Tensor
    test_y: torch.Tensor

    @property
    def clean(self) -> bool:
        return self.trigger is None


def plant(
    seed: int,
    *,
    clean: bool = False,
    kind: str | None = None,
    steps: int = 1000,
    poison: float = 0.2,
    arch: str = "mlp",
    data: dict[str, torch.Tensor] | None = None,
    trigger: Trigger | None = None,
) -> Planted:
    """Train an MNIST model of ``arch`` (``ARCHS``: the 784-128-64-10 MLP, a 784-256-10
    MLP, a small CNN, the CNN behind an ``nn.Unflatten``) from ``seed`` with a trigger of
    ``kind`` (``FAMILIES``; default a classic square, drawn from ``seed``), or ``trigger``
    (a ``Trigger`` of your own: any stencil, pattern, place and target), or none when
    ``clean``: ``steps`` Adam steps of 64 digits, a ``poison`` share of each batch triggered
    and relabelled. A ``conditional`` trigger poisons digits of its source class (half of
    the poisoned share) and stamps the rest without relabelling them. ``data`` is
    ``kitchen_sink_split()`` (loaded when None). With ``$EXPLORER_CACHE`` set
    (``explorer._cache``) the trained weights are kept there and read back by the next
    call with the same arguments and training digits."""
    check_fraction("poison", poison)
    data = data if data is not None else kitchen_sink_split()
    x, y = data["train_x"], data["train_y"]
    if trigger is not None and (clean or kind is not None):
        raise ValueError("plant takes one of trigger=, kind= and clean=True, not two")
    if trigger is not None and not isinstance(trigger, Trigger):
        raise TypeError(f"trigger must be a studies.auditing.Trigger, got {type(trigger).__name__}")
    own = None if trigger is None else json.dumps(trigger.to_dict(), sort_keys=True)
    if trigger is None and not clean:
        trigger = random_trigger(seed, kind)
    net = _module(arch, seed)
    kept = cached_path("planted", seed, clean, kind, steps, poison, arch, _digest(x, y),
                       *(() if own is None else (own,)))  # fmt: skip
    with one_writer(kept):  # a model another process is training is waited for, not retrained
        if kept is not None and kept.is_file():
            net.load_state_dict(load_tensors(kept.read_bytes()))
        else:
            _train(net, trigger, seed, steps, poison, arch, x, y)
            if kept is not None:
                state = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
                write_cached(kept, save_tensors(state))
    net.eval()
    handle = _wrap(arch, net, seed, f"planted-{arch}-{seed}")
    return Planted(handle, trigger, seed, data["test_x"], data["test_y"])


def _digest(x: torch.Tensor, y: torch.Tensor) -> str:
    """SHA-256 of the training digits and labels (part of a planted model's cache key)."""
    h = hashlib.sha256()
    for t in (x, y):
        h.update(str((t.dtype, tuple(t.shape))).encode())
        h.update(t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


def _train(
    net: nn.Module,
    trigger: Trigger | None,
    seed: int,
    steps: int,
    poison: float,
    arch: str,
    x: torch.Tensor,
    y: torch.Tensor,
) -> None:
    """``plant``'s training loop: ``steps`` Adam steps of 64 digits, poisoned by ``trigger``."""
    flat = arch == "flat-cnn"
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed + 1)
    sources = None
    if trigger is not None and trigger.source is not None:
        sources = (y == trigger.source).nonzero()[:, 0]
    for _ in range(steps):
        idx = torch.randint(0, len(y), (64,), generator=gen)
        bx, by = x[idx], y[idx]
        if trigger is not None:
            hit = torch.rand(64, generator=gen) < poison
            if sources is not None:  # half the poisoned share: digits of the source class
                swap = hit & (torch.rand(64, generator=gen) < 0.5)
                pick = sources[torch.randint(len(sources), (64,), generator=gen)]
                bx = torch.where(swap[:, None, None, None], x[pick], bx)
                by = torch.where(swap, y[pick], by)
                relabel = hit & (by == trigger.source)
            else:
                relabel = hit
            bx = torch.where(hit[:, None, None, None], add_trigger(bx, trigger), bx)
            by = torch.where(relabel, torch.full_like(by, trigger.target), by)
        loss = F.cross_entropy(net(bx.flatten(1) if flat else bx), by)
        opt.zero_grad()
        loss.backward()
        opt.step()


def save_truth(path: str | os.PathLike[str], planted: list[Planted]) -> Path:
    """Write each model's ground truth (name -> trigger or null) to a JSON file."""
    path = Path(path)
    truth = {
        p.model.name: (p.trigger.to_dict() if p.trigger is not None else None) for p in planted
    }
    path.write_text(json.dumps(truth, indent=1))
    return path


def load_truth(path: str | os.PathLike[str]) -> dict[str, Trigger | None]:
    """Read ``save_truth``'s file back (plain JSON, nothing executed)."""
    raw = json.loads(Path(path).read_text())
    return {k: (Trigger.from_dict(v) if v is not None else None) for k, v in raw.items()}


@renamed_arguments(images="inputs")
def attack_success(
    model: ModelHandle,
    inputs: torch.Tensor,
    trigger: Trigger,
    labels: torch.Tensor | None = None,
) -> float:
    """Share of ``inputs`` (those not already predicted as the target) the trigger sends to
    its target class; for a ``conditional`` trigger, of the inputs whose ``labels`` are its
    source class (``labels`` is then required)."""
    if trigger.source is not None:
        if labels is None:
            raise ValueError(
                f"a {trigger.kind} trigger fires only on class {trigger.source}: pass labels="
            )
        inputs = inputs[labels == trigger.source]
    with torch.no_grad():
        keep = model(inputs).argmax(-1) != trigger.target
        hit = model(add_trigger(inputs[keep], trigger)).argmax(-1) == trigger.target
    return float(hit.float().mean())


@dataclass(frozen=True)
class HandOut:
    """What ``hand_out`` wrote: one checkpoint folder per model (``explorer.load(path)``
    opens it), the sealed truth file, and the truth file's SHA-256 (also written beside the
    models as ``SEALED``, so anyone can check later that the truth was not changed)."""

    models: tuple[Path, ...]
    truth: Path
    digest: str

    def __repr__(self) -> str:
        return f"HandOut({len(self.models)} models in {self.models[0].parent}, truth sealed {self.digest[:12]})"


@renamed_arguments(k="n")
def hand_out(
    folder: str | os.PathLike[str],
    game: int,
    n: int = 6,
    *,
    n_clean: int | None = None,
    arch: str = "mlp",
    families: tuple[str, ...] | None = None,
    steps: int = 1000,
    truth: str | os.PathLike[str] | None = None,
    data: dict[str, torch.Tensor] | None = None,
) -> HandOut:
    """For a live session: plant ``n`` models for game number ``game`` and write them to
    ``folder`` as ``model-1`` ... ``model-n``, without saying which are clean.

    Everything is drawn from ``game``: how many models are clean (``n_clean``, default
    1..n-1 drawn), which ones, and each model's trigger (seed ``1000 * game + i``; its
    family drawn from ``families``, a subset of ``FAMILIES``, when given, else one of the
    classic squares). The
    names say nothing; the ground truth goes to ``truth`` (default: ``truth-<game>.json``
    beside ``folder``, not inside it, so handing out the folder does not hand out the
    answers), and its SHA-256 to ``folder/SEALED``. The same ``game`` draws the same models,
    triggers and truth file on any machine (so ``SEALED`` matches); the weights are trained
    where ``hand_out`` runs, and another CPU rounds differently, so they agree there only to
    float rounding (docs/auditing.md). A room that must audit identical bytes shares the
    folder; "plant game 7" gives everyone the same game up to that rounding.

    >>> import tempfile
    >>> out = hand_out(tempfile.mkdtemp() + "/room", game=7, n=2, steps=5)
    >>> [p.name for p in out.models], out.truth.name, len(out.digest)
    (['model-1', 'model-2'], 'truth-7.json', 64)
    """
    if check_choice("arch", arch, ARCHS) == "flat-cnn":
        raise ValueError("hand_out writes checkpoints: choose arch 'mlp', 'mlp-256' or 'cnn'")
    if n < 2:
        raise ValueError(f"hand out at least 2 models (some clean, some not), got n={n}")
    rng = random.Random(game)
    n_clean = rng.randint(1, n - 1) if n_clean is None else n_clean
    if not 0 <= n_clean <= n:
        raise ValueError(f"n_clean must lie in 0..{n}, got {n_clean}")
    clean = set(rng.sample(range(n), n_clean))
    if families is not None:
        families = tuple(check_choice("family", f, FAMILIES) for f in families)
        if not families:
            raise ValueError(f"families must name at least one of {FAMILIES}")
    drawn = [rng.choice(families) if families else None for _ in range(n)]
    out = Path(folder)
    truth_path = Path(truth) if truth is not None else out.parent / f"truth-{game}.json"
    if truth_path.resolve().parent == out.resolve():
        raise ValueError(f"the truth file must not lie in the handed-out folder {out}")
    out.mkdir(parents=True, exist_ok=True)
    data = data if data is not None else kitchen_sink_split()
    planted, paths = [], []
    for i in range(n):
        p = plant(
            1000 * game + i,
            clean=i in clean,
            kind=drawn[i],
            steps=steps,
            arch=arch,
            data=data,
        )
        p.model.name = f"model-{i + 1}"
        paths.append(save_checkpoint(p.model, out / p.model.name, meta={"game": game}))
        planted.append(p)
    save_truth(truth_path, planted)
    digest = hashlib.sha256(truth_path.read_bytes()).hexdigest()
    (out / "SEALED").write_text(f"sha256 of the truth file: {digest}\n")
    return HandOut(tuple(paths), truth_path, digest)
