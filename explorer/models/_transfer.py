"""What a pass sends back, kept small: ``shape_only``.

A remote backend (nnsight on an NDIF server) runs the caller's ``select`` inside the
trace and pickles what it returns. This module imports torch only, so a trace that calls
``shape_only`` ships its source, not explorer.

>>> shape_only(torch.ones(2, 3)).shape, shape_only(torch.ones(2, 3)).untyped_storage().nbytes()
(torch.Size([2, 3]), 4)
"""

from __future__ import annotations

import torch

__all__ = ["shape_only"]


def shape_only(act: torch.Tensor) -> torch.Tensor:
    """Zeros of ``act``'s shape and dtype in one stored element (an expanded zero).

    Made on the CPU: a server moves a GPU tensor to the CPU before pickling it, and that
    copy of an expanded tensor would be the full size (it keeps no zero strides).
    """
    return torch.zeros((), dtype=act.dtype).expand(act.shape)
