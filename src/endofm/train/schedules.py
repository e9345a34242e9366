"""Per-step schedules, precomputed once (as DINOv2's ``CosineScheduler``)."""

from __future__ import annotations

import numpy as np


class CosineScheduler:
    """``total_iters`` values: a linear warm-up ``start_warmup_value → base_value`` over
    ``warmup_iters`` steps (both ends included, as the release's DINO schedule), then a cosine
    from ``base_value`` to ``final_value`` over the remaining steps. Indexing past the end gives
    ``final_value``.

    A constant is ``CosineScheduler(v, v, n)``; a linear ramp followed by a constant (the
    teacher temperature) is ``CosineScheduler(end, end, n, warmup_iters, start)``.
    """

    def __init__(self, base_value: float, final_value: float, total_iters: int,
                 warmup_iters: int = 0, start_warmup_value: float = 0.0) -> None:
        if total_iters < 0 or warmup_iters < 0:
            raise ValueError(f"schedule lengths must be >= 0, got total {total_iters}, "
                             f"warm-up {warmup_iters}")
        self.final_value = final_value
        warmup_iters = min(warmup_iters, total_iters)
        warmup = np.linspace(start_warmup_value, base_value, warmup_iters)
        steps = np.arange(total_iters - warmup_iters)
        cosine = final_value + 0.5 * (base_value - final_value) * (
            1 + np.cos(np.pi * steps / max(1, len(steps))))
        self.values = np.concatenate([warmup, cosine])

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, it: int) -> float:
        return float(self.values[it]) if it < len(self.values) else float(self.final_value)
