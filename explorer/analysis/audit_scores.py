"""The scores an audit flags by: ``mad_index`` (an outlier score over numbers),
``weight_anomaly`` (first-layer weights on pixels the data never uses) and
``margin_over_runner_up`` (how far a class's logit leads every other). ``audit``, its
searches (``_audit_search``) and ``trigger_place`` read them.

>>> mad_index(torch.tensor([10.0, 11.0, 9.0, 10.5, 2.0])).round().tolist()
[0.0, 0.0, 1.0, 0.0, 5.0]
"""

from __future__ import annotations

import torch

from explorer.models.handle import ModelHandle

__all__ = [
    "weight_anomaly",
]


def margin_over_runner_up(logits: torch.Tensor, cls: int) -> torch.Tensor:
    """``[batch]``: the logit of class ``cls`` minus the largest logit of any other class
    (positive where the model picks ``cls``).

    >>> margin_over_runner_up(torch.tensor([[1.0, 3.0, 2.0], [4.0, 0.0, 1.0]]), 1).tolist()
    [1.0, -4.0]
    """
    others = torch.cat([logits[:, :cls], logits[:, cls + 1 :]], 1).amax(1)
    return logits[:, cls] - others


def mad_index(values: torch.Tensor) -> torch.Tensor:
    """How far below the median each value lies, in robust standard deviations (1.4826 x
    the median absolute deviation); 0 above the median.

    >>> mad_index(torch.tensor([10.0, 11.0, 9.0, 10.5, 2.0])).round().tolist()
    [0.0, 0.0, 1.0, 0.0, 5.0]
    """
    med = values.median()
    mad = (values - med).abs().median().clamp_min(1e-6) * 1.4826
    return ((med - values) / mad).clamp_min(0)


def weight_anomaly(model: ModelHandle, inputs: torch.Tensor) -> torch.Tensor:
    """``[H, W]``: each input pixel's first-layer weight norm over the median norm of pixels
    the data uses, on pixels ``images`` never use (0 elsewhere).

    >>> from explorer.studies.auditing import make_mlp
    >>> import explorer
    >>> m = explorer.load(make_mlp(0), input_shape=(1, 28, 28))
    >>> weight_anomaly(m, torch.rand(8, 1, 28, 28)).shape
    torch.Size([28, 28])
    """
    inputs = model.check_images(inputs)
    first = next(p for n, p in model.named_parameters() if n.endswith("weight"))
    w = first.detach()
    h, wd = inputs.shape[-2:]
    if w.ndim != 2 or w.shape[1] != inputs[0].numel():
        raise ValueError(
            f"weight_anomaly needs a first linear layer over the flat image ({inputs[0].numel()} "
            f"inputs), got a weight of shape {list(w.shape)}"
        )
    norms = w.norm(dim=0).reshape(-1, h, wd).amax(0)
    used = inputs.std(0).amax(0) > 1e-3
    if not used.any() or used.all():
        return torch.zeros(h, wd)
    return torch.where(used, torch.zeros_like(norms), norms / norms[used].median())
