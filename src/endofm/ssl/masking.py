"""Block masks for masked-patch (iBOT) training over the ``(t, h, w)`` token grid of a clip.

A 2-D block mask over ``h x w`` is a union of random rectangles (BEiT / iBOT / DINOv2 style):
each rectangle has an area of ``min_block`` to ``max_block_fraction · h · w`` patches and an
aspect ratio log-uniform in ``[min_aspect, 1 / min_aspect]``, placed where it adds new patches,
until about ``ratio · h · w`` patches are masked. A clip's mask is either

- ``tube``: one 2-D mask repeated over all ``T`` frames (the same patches hidden in every
  frame, so the student cannot copy them from a neighbouring frame), or
- ``frame``: an independent 2-D mask per frame, each with the clip's ratio.

As in DINOv2's collate, only a fraction ``probability`` of the crops in a batch is masked; their
ratios are spread over ``ratio_range`` (one draw from each of equal-width bins), and which crops
are masked is shuffled. Masks are returned in the backbone's token order (h, w, t), t fastest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

MASK_MODES = ("tube", "frame")


@dataclass(frozen=True)
class BlockMaskConfig:
    ratio_range: tuple[float, float] = (0.1, 0.5)
    probability: float = 0.5
    mode: str = "tube"
    min_block: int = 4
    max_block_fraction: float = 0.5
    min_aspect: float = 0.3

    def __post_init__(self) -> None:
        low, high = self.ratio_range
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError(f"mask ratio range must satisfy 0 <= low <= high <= 1, "
                             f"got {self.ratio_range}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"mask probability must be in [0, 1], got {self.probability}")
        if self.mode not in MASK_MODES:
            raise ValueError(f"mask mode must be one of {MASK_MODES}, got {self.mode!r}")


def _uniform(gen: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * torch.rand((), generator=gen).item()


def _randint(gen: torch.Generator, low: int, high: int) -> int:
    """Uniform integer in ``[low, high]``."""
    return int(torch.randint(low, high + 1, (), generator=gen))


def _add_block(mask: Tensor, budget: int, cfg: BlockMaskConfig, gen: torch.Generator) -> int:
    """Mask one random rectangle of ``mask`` ``[h, w]`` adding at most ``budget`` new patches
    (10 tries); returns how many were added."""
    h, w = mask.shape
    log_aspect = (math.log(cfg.min_aspect), -math.log(cfg.min_aspect))
    for _ in range(10):
        area = _uniform(gen, cfg.min_block, max(budget, cfg.min_block))
        aspect = math.exp(_uniform(gen, *log_aspect))
        bh = int(round(math.sqrt(area * aspect)))
        bw = int(round(math.sqrt(area / aspect)))
        if not (0 < bh <= h and 0 < bw <= w):
            continue
        top, left = _randint(gen, 0, h - bh), _randint(gen, 0, w - bw)
        block = mask[top:top + bh, left:left + bw]
        new = int((~block).sum())
        if 0 < new <= budget:
            block.fill_(True)
            return new
    return 0


def block_mask_2d(h: int, w: int, num_masked: int, cfg: BlockMaskConfig,
                  gen: torch.Generator) -> Tensor:
    """A bool ``[h, w]`` mask with about ``num_masked`` (never more) patches set."""
    mask = torch.zeros(h, w, dtype=torch.bool)
    max_block = max(cfg.min_block, int(cfg.max_block_fraction * h * w))
    count = 0
    while count < num_masked:
        added = _add_block(mask, min(num_masked - count, max_block), cfg, gen)
        if added == 0:
            break
        count += added
    return mask


def clip_mask(t: int, h: int, w: int, ratio: float, cfg: BlockMaskConfig,
              gen: torch.Generator) -> Tensor:
    """A bool ``[T, h, w]`` mask for one clip (tube: the same 2-D mask in every frame)."""
    num = int(ratio * h * w)
    if cfg.mode == "tube":
        return block_mask_2d(h, w, num, cfg, gen).expand(t, h, w).clone()
    return torch.stack([block_mask_2d(h, w, num, cfg, gen) for _ in range(t)])


def crop_masks(num_frames: Sequence[int], h: int, w: int, cfg: BlockMaskConfig,
               gen: torch.Generator) -> list[Tensor]:
    """One bool mask ``[h*w*T_i]`` (token order h, w, t) per crop, crop ``i`` having
    ``num_frames[i]`` frames.

    ``int(len(num_frames) · probability)`` crops are masked, with ratios drawn from
    equal-width bins of ``ratio_range``; the others are left whole; which crop gets which mask
    is shuffled.
    """
    crops = len(num_frames)
    num_masked = int(crops * cfg.probability)
    edges = torch.linspace(*cfg.ratio_range, num_masked + 1).tolist()
    ratios = [_uniform(gen, edges[i], edges[i + 1]) for i in range(num_masked)]
    ratios += [0.0] * (crops - num_masked)
    order = torch.randperm(crops, generator=gen).tolist()
    masks = []
    for crop, t in enumerate(num_frames):
        mask = clip_mask(t, h, w, ratios[order[crop]], cfg, gen)  # [T, h, w]
        masks.append(mask.permute(1, 2, 0).reshape(-1))
    return masks


def view_masks(batch: int, view_frames: Sequence[int], h: int, w: int, cfg: BlockMaskConfig,
               gen: torch.Generator) -> list[Tensor]:
    """Masks for ``len(view_frames)`` views of ``batch`` clips, drawn over all
    ``batch · len(view_frames)`` crops together (as DINOv2 and EndoFM-LV do for their global
    crops): one bool ``[batch, h*w*T_v]`` per view."""
    frames = [t for t in view_frames for _ in range(batch)]
    masks = crop_masks(frames, h, w, cfg, gen)
    return [torch.stack(masks[v * batch:(v + 1) * batch]) for v in range(len(view_frames))]
