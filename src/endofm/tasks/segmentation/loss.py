"""The release's segmentation loss: cross-entropy + soft Dice (averaged over classes)."""

from __future__ import annotations

from enum import StrEnum

import torch
import torch.nn.functional as F
from torch import nn

from endofm.data.formats.masks import IGNORE


class DiceDenominator(StrEnum):
    """Soft Dice's denominator: ``sum``: Σp + Σg; ``squares``: Σp² + Σg² (the release)."""

    sum = "sum"
    squares = "squares"


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1e-5,
                   denominator: DiceDenominator = DiceDenominator.sum) -> torch.Tensor:
    """``1 - mean_c Dice(softmax(logits)_c, target == c)`` over the whole batch, with Dice
    ``(2Σpg + eps) / (Σp + Σg + eps)``, or ``/ (Σp² + Σg² + eps)`` for
    ``denominator="squares"`` (the release's ``DiceLoss``).

    ``logits [B, C, ...]`` float, ``target [B, ...]`` int64 class indices; pixels of
    :data:`~endofm.data.formats.masks.IGNORE` (``data.ignore_index``) count nowhere.
    """
    if denominator not in set(DiceDenominator):
        raise ValueError(f"dice denominator must be one of {[str(d) for d in DiceDenominator]}, "
                         f"got {denominator!r}")
    num_classes = logits.shape[1]
    valid = (target != IGNORE).unsqueeze(1)
    probs = logits.float().softmax(dim=1) * valid
    onehot = F.one_hot(target.where(valid[:, 0], 0), num_classes).movedim(-1, 1)
    onehot = onehot.to(probs.dtype) * valid
    dims = (0, *range(2, probs.dim()))
    inter = (probs * onehot).sum(dims)
    power = 2 if denominator == DiceDenominator.squares else 1
    denom = probs.pow(power).sum(dims) + onehot.pow(power).sum(dims)
    return 1.0 - ((2 * inter + eps) / (denom + eps)).mean()


class CEDiceLoss(nn.Module):
    """``ce_weight * CE + dice_weight * soft Dice`` (the release weighs both 0.5)."""

    def __init__(self, ce_weight: float = 0.5, dice_weight: float = 0.5,
                 dice_denominator: DiceDenominator = DiceDenominator.sum) -> None:
        super().__init__()
        self.ce_weight, self.dice_weight = ce_weight, dice_weight
        self.dice_denominator = dice_denominator

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``logits [B, C, T, H, W]``, ``target [B, T, H, W]`` int64 → scalar loss."""
        ce = F.cross_entropy(logits.float(), target, ignore_index=IGNORE)
        dice = soft_dice_loss(logits, target, denominator=self.dice_denominator)
        return self.ce_weight * ce + self.dice_weight * dice
