"""CVC-12k sequences as torch datasets: training windows with the release's augmentation, and
whole sequences (resized frames, original-size masks) for evaluation.

Records come from ``endofm.data.read_cvc`` (``Sequence(name, frames, masks)``). Masks are
stored with 255 = polyp; any value above 127 counts as polyp.
"""

from __future__ import annotations

from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from endofm.data.images import read_image
from endofm.data.transforms import normalize
from endofm.tasks.segmentation.stitching import window_indices, window_starts


def read_mask(path: Path) -> np.ndarray:
    """A binary mask as ``uint8 [H, W]`` (1 = polyp); an unreadable file raises naming it."""
    return (read_image(path, "L") > 127).astype(np.uint8)


def load_sequence(frames: SequenceABC[Path], masks: SequenceABC[Path]
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames ``uint8 [L, 3, H, W]`` and masks ``uint8 [L, H, W]`` of one sequence."""
    imgs = np.stack([read_image(p) for p in frames])
    gts = np.stack([read_mask(p) for p in masks])
    if imgs.shape[1:3] != gts.shape[1:]:
        raise ValueError(f"{masks[0]}: mask size {gts.shape[1:]} differs from frame size "
                         f"{imgs.shape[1:3]}")
    return torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(gts)


def train_transform(size: int, margin: int = 32, rotation: float = 5.0) -> v2.Compose:
    """The release's augmentation: resize to ``size + margin`` (32 in the release), random
    ``size`` crop, horizontal flip, rotation within ±``rotation`` degrees — the same for all
    frames and masks of a window. Evaluation sees whole frames resized to ``size``, so a small
    ``size`` wants a proportionally smaller ``margin``."""
    return v2.Compose([
        v2.Resize((size + margin, size + margin), antialias=True),
        v2.RandomCrop(size),
        v2.RandomHorizontalFlip(),
        v2.RandomRotation(rotation),
    ])


def eval_transform(size: int) -> v2.Resize:
    """Evaluation: frames resized to ``size x size`` (masks keep their size for the metrics)."""
    return v2.Resize((size, size), antialias=True)


@dataclass(frozen=True)
class Window:
    sequence: int
    start: int


class SegmentationWindows(Dataset):
    """Windows of ``num_frames`` frames over every sequence, for training.

    Item: ``(clip float32 [3, T, S, S], mask int64 [T, S, S])``.
    """

    def __init__(self, sequences: SequenceABC, num_frames: int, stride: int, size: int,
                 augment: bool = True, margin: int = 32, rotation: float = 5.0) -> None:
        if not sequences:
            raise ValueError("no sequences to train on")
        self.sequences = list(sequences)
        self.num_frames = num_frames
        self.transform = (train_transform(size, margin, rotation) if augment
                          else eval_transform(size))
        self.windows = [Window(i, s) for i, seq in enumerate(self.sequences)
                        for s in window_starts(len(seq.frames), num_frames, stride)]

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        win = self.windows[index]
        seq = self.sequences[win.sequence]
        idx = window_indices(win.start, self.num_frames, len(seq.frames))
        frames, masks = load_sequence([seq.frames[i] for i in idx], [seq.masks[i] for i in idx])
        video, mask = self.transform(tv_tensors.Video(frames), tv_tensors.Mask(masks))
        return normalize(video.as_subclass(torch.Tensor)), mask.as_subclass(torch.Tensor).long()


class SegmentationSequences(Dataset):
    """Whole sequences for evaluation.

    Item: ``(name, frames float32 [3, L, S, S] (resized, normalised), masks uint8 [L, H, W]
    (original size))``.
    """

    def __init__(self, sequences: SequenceABC, size: int) -> None:
        self.sequences = list(sequences)
        self.resize = eval_transform(size)

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> tuple[str, torch.Tensor, torch.Tensor]:
        seq = self.sequences[index]
        frames, masks = load_sequence(seq.frames, seq.masks)
        return seq.name, normalize(self.resize(frames)), masks
