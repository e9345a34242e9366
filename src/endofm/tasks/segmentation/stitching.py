"""Long sequences as overlapping windows of T frames whose predictions are averaged.

A sequence of L frames is covered by windows starting at ``0, stride, 2*stride, …`` plus one
window ending at the last frame. A sequence shorter than the window is padded by repeating its
last frame; the padded predictions are dropped. Every frame's prediction is the mean of the
predictions of all windows that contain it.
"""

from __future__ import annotations

import torch


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """First frame of each window covering ``length`` frames (``stride`` ≤ ``window``)."""
    if length < 1 or window < 1 or not 1 <= stride <= window:
        raise ValueError(f"need length ≥ 1, window ≥ 1 and 1 ≤ stride ≤ window; "
                         f"got length={length}, window={window}, stride={stride}")
    last = max(length - window, 0)
    starts = list(range(0, last + 1, stride))
    if starts[-1] != last:
        starts.append(last)
    return starts


def window_indices(start: int, window: int, length: int) -> list[int]:
    """Frame indices of the window at ``start``, clamped to the sequence (pads by repetition)."""
    return [min(start + i, length - 1) for i in range(window)]


def stitch(window_preds: list[torch.Tensor], starts: list[int], length: int) -> torch.Tensor:
    """Average per-window predictions ``[T, ...]`` into per-frame predictions ``[length, ...]``.

    ``window_preds[k][i]`` is the prediction for frame ``starts[k] + i``; entries beyond the end
    of the sequence (padding) are ignored.
    """
    if len(window_preds) != len(starts) or not window_preds:
        raise ValueError(f"got {len(window_preds)} window predictions for {len(starts)} starts")
    first = window_preds[0]
    total = first.new_zeros((length, *first.shape[1:]), dtype=torch.float32)
    count = torch.zeros(length, dtype=torch.float32, device=first.device)
    for pred, start in zip(window_preds, starts, strict=True):
        n = min(pred.shape[0], length - start)
        total[start:start + n] += pred[:n].float()
        count[start:start + n] += 1
    if bool((count == 0).any()):
        missing = torch.nonzero(count == 0).flatten().tolist()
        raise ValueError(f"frames {missing} are covered by no window")
    return total / count.view(-1, *([1] * (total.dim() - 1)))
