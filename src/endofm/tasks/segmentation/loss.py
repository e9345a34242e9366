"""The release's segmentation loss: cross-entropy + soft Dice (averaged over classes)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``1 - mean_c Dice(softmax(logits)_c, target == c)`` over the whole batch.

    ``logits [B, C, ...]`` float, ``target [B, ...]`` int64 class indices.
    """
    num_classes = logits.shape[1]
    probs = logits.float().softmax(dim=1)
    onehot = F.one_hot(target, num_classes).movedim(-1, 1).to(probs.dtype)
    dims = (0, *range(2, probs.dim()))
    inter = (probs * onehot).sum(dims)
    denom = probs.sum(dims) + onehot.sum(dims)
    return 1.0 - ((2 * inter + eps) / (denom + eps)).mean()


class CEDiceLoss(nn.Module):
    """``ce_weight * CE + dice_weight * soft Dice`` (the release weighs both 0.5)."""

    def __init__(self, ce_weight: float = 0.5, dice_weight: float = 0.5) -> None:
        super().__init__()
        self.ce_weight, self.dice_weight = ce_weight, dice_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``logits [B, C, T, H, W]``, ``target [B, T, H, W]`` int64 → scalar loss."""
        ce = F.cross_entropy(logits.float(), target)
        return self.ce_weight * ce + self.dice_weight * soft_dice_loss(logits, target)
