"""Per-iteration schedules, precomputed (DINO-style): cosine with an optional linear warm-up."""

from __future__ import annotations

import numpy as np


def cosine_schedule(base: float, final: float, epochs: int, iters_per_epoch: int,
                    warmup_epochs: float = 0, warmup_start: float = 0.0) -> np.ndarray:
    """``epochs × iters_per_epoch`` values: linear ``warmup_start → base`` over the warm-up,
    then a cosine from ``base`` to ``final``."""
    total = epochs * iters_per_epoch
    warmup_iters = min(total, int(round(warmup_epochs * iters_per_epoch)))
    warmup = np.linspace(warmup_start, base, warmup_iters, endpoint=False)
    steps = np.arange(total - warmup_iters)
    cosine = final + 0.5 * (base - final) * (1 + np.cos(np.pi * steps / max(1, len(steps))))
    return np.concatenate([warmup, cosine])


def teacher_temp_schedule(start: float, end: float, warmup_epochs: int, epochs: int,
                          iters_per_epoch: int) -> np.ndarray:
    """Teacher temperature: linear ``start → end`` over ``warmup_epochs``, then ``end``."""
    warm = np.linspace(start, end, warmup_epochs * iters_per_epoch)
    rest = np.full((epochs - warmup_epochs) * iters_per_epoch, end)
    return np.concatenate([warm, rest])[: epochs * iters_per_epoch]
