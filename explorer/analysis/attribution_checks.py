"""Checks of attribution maps that look at the model, not at the maps.

- ``perturbation_curves``: deletion and insertion curves (Petsiuk et al. 2018): remove, or
  reveal on a blank image, pixels in an order (an attribution map's, or a random one) and
  follow the target class's probability. A map that finds the evidence makes deletion fall
  fast and insertion rise fast.
- ``randomize_weights``: the model with re-initialized weights, for the model-parameter
  randomization check of Adebayo et al. 2018 (a map that explains the model must change).
- ``spearman``: the rank correlation that check compares maps with (ties get average ranks).

``explorer.studies.attribution_benchmark`` combines them into the kitchen sink's benchmark.

>>> import torch
>>> spearman(torch.tensor([[1.0, 2, 3, 4]]), torch.tensor([[10.0, 20, 30, 40]]))
tensor([1.])
"""

from __future__ import annotations

import torch
from jaxtyping import Float

from explorer.models.handle import ModelHandle

# randomize_weights and spearman are helpers of the attribution benchmark study, not API.
__all__ = ["perturbation_curves"]


@torch.no_grad()
def _target_probability(
    model: ModelHandle, images: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    probs = model(model.to_inputs(images)).softmax(-1)
    return probs.gather(-1, targets[:, None]).squeeze(-1)


@torch.no_grad()
def perturbation_curves(
    model: ModelHandle,
    inputs: Float[torch.Tensor, "batch c h w"],
    *,
    target: torch.Tensor,
    order: Float[torch.Tensor, "batch h w"],
    n_steps: int = 20,
    baseline: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Deletion and insertion curves ``[batch, n_steps + 1]`` for one pixel order per image.

    Pixels (all channels of a location together) are ranked by ``order``, highest first.
    Step ``s`` removes (deletion) or reveals (insertion) the top ``s / n_steps``.
    Returns ``(fractions, deletion, insertion)``; curves hold the target probability.
    """
    images, targets = inputs, target
    b, c, h, w = images.shape
    n_pix = h * w
    ranks = order.reshape(b, n_pix).argsort(dim=1, descending=True).argsort(dim=1)
    fractions = torch.linspace(0, 1, n_steps + 1)
    counts = (fractions * n_pix).round().long()
    # mask[s, i, p] is True where pixel p of image i is among the first counts[s] in its order
    mask = (ranks[None] < counts[:, None, None]).reshape(n_steps + 1, b, 1, h, w)
    blank = torch.full_like(images, baseline)
    deleted = torch.where(mask, blank[None], images[None])
    inserted = torch.where(mask, images[None], blank[None])
    flat_t = targets.repeat(n_steps + 1)
    deletion = _target_probability(model, deleted.reshape(-1, c, h, w), flat_t)
    insertion = _target_probability(model, inserted.reshape(-1, c, h, w), flat_t)
    return (
        fractions,
        deletion.reshape(n_steps + 1, b).T.contiguous(),
        insertion.reshape(n_steps + 1, b).T.contiguous(),
    )


def randomize_weights(model: ModelHandle, *, seed: int = 0) -> ModelHandle:
    """An independent copy of ``model`` with every layer re-initialized (seeded)."""
    copy = model.copy()
    copy.reset_parameters(seed)
    return copy.eval()


def _average_ranks(x: torch.Tensor) -> torch.Tensor:
    # equal values share the mean of their positions (MNIST maps have many exact zeros)
    sorted_x, order = x.sort()
    _, inverse, counts = torch.unique_consecutive(sorted_x, return_inverse=True, return_counts=True)
    mean_pos = (torch.cumsum(counts, 0) - counts).float() + (counts.float() - 1) / 2
    out = torch.empty(x.shape[0], dtype=torch.float32)
    out[order] = mean_pos[inverse]
    return out


def spearman(
    a: Float[torch.Tensor, "batch n"],
    b: Float[torch.Tensor, "batch n"],
    *,
    mask: torch.Tensor | None = None,
) -> Float[torch.Tensor, " batch"]:
    """Spearman rank correlation per row (ties get average ranks), over ``mask`` if given.

    A row with fewer than two selected entries or a constant side scores 0.
    """
    out = torch.zeros(a.shape[0])
    for i in range(a.shape[0]):
        keep = mask[i] if mask is not None else slice(None)
        x, y = a[i][keep].float(), b[i][keep].float()
        if x.numel() < 2:
            continue
        rx, ry = _average_ranks(x), _average_ranks(y)
        rx, ry = rx - rx.mean(), ry - ry.mean()
        denom = float(rx.norm() * ry.norm())
        if denom > 0:
            out[i] = (rx * ry).sum() / denom
    return out.clamp(-1.0, 1.0)  # float32 rounding can land a hair outside
