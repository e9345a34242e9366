"""Gradient clipping for pre-training: the release's per-tensor rule or one global norm."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

CLIP_MODES = ("per_param", "global")


def clip_gradients(parameters: Iterable[nn.Parameter], max_norm: float, mode: str) -> None:
    """Clip gradients in place.

    ``per_param`` (the release's ``utils.clip_gradients``): every tensor's gradient whose L2
    norm exceeds ``max_norm`` is scaled by ``max_norm / (norm + 1e-6)``, each on its own.
    ``global``: ``torch.nn.utils.clip_grad_norm_`` over all of them together.
    """
    if mode not in CLIP_MODES:
        raise ValueError(f"clip mode must be one of {CLIP_MODES}, got {mode!r}")
    params = [p for p in parameters if p.grad is not None]
    if not params:
        return
    if mode == "global":
        nn.utils.clip_grad_norm_(params, max_norm)
        return
    with torch.no_grad():
        for p in params:
            coef = max_norm / (p.grad.norm(2) + 1e-6)
            p.grad.mul_(coef.clamp(max=1.0))
