"""CVC-12k sequences as torch datasets: training windows with the release's augmentation, and
whole sequences (resized frames, original-size masks) for evaluation.

Records come from ``endofm.data.read_cvc`` or the ``image_masks`` format
(``Sequence(name, frames, masks)``). CVC's masks are stored with 255 = polyp (any value above
127 counts as polyp); other masks decode through the dataset's
:class:`endofm.data.formats.MaskCodec` (``decode``) to class indices.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass
from enum import StrEnum
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


MaskDecoder = Callable[[Path], np.ndarray]  # a mask file → class indices uint8 [H, W]


def load_sequence(frames: SequenceABC[Path], masks: SequenceABC[Path],
                  decode: MaskDecoder = read_mask) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames ``uint8 [L, 3, H, W]`` and masks ``uint8 [L, H, W]`` (class indices, by
    ``decode``; default: CVC's binary masks) of one sequence."""
    imgs = [read_image(p) for p in frames]
    gts = [decode(p) for p in masks]
    for frame, image, mask, gt in zip(frames, imgs, masks, gts, strict=True):
        if image.shape[:2] != gt.shape or image.shape[:2] != imgs[0].shape[:2]:
            raise ValueError(f"{mask}: mask size {gt.shape} differs from its frame {frame} "
                             f"{image.shape[:2]}, or the sequence's frames differ in size")
    return (torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous(),
            torch.from_numpy(np.stack(gts)))


class Normalization(StrEnum):
    """How frames become model input: ``imagenet``: RGB with ImageNet mean/std; ``release``:
    BGR channel order (OpenCV fed as RGB), each frame min-max stretched before and after
    augmentation, then ``(x - 0.5) / 0.5`` (the release)."""

    imagenet = "imagenet"
    release = "release"


def release_stretch(frames: torch.Tensor) -> torch.Tensor:
    """The release's frame reading: ``uint8 [T, 3, H, W]`` RGB → channels in BGR order (OpenCV's
    ``imread``, fed on as if RGB), each frame min–max stretched to 0–255 (truncated); uint8."""
    x = frames.flip(1).float()
    lo = x.amin(dim=(1, 2, 3), keepdim=True)
    hi = x.amax(dim=(1, 2, 3), keepdim=True)
    return ((x - lo) / (hi - lo).clamp_min(1e-6) * 255).to(torch.uint8)


def release_normalize(frames: torch.Tensor) -> torch.Tensor:
    """The release's ``ToTensor`` + ``Normalize(0.5, 0.5)``: ``uint8 [T, 3, H, W]`` → each frame
    min–max scaled to [0, 1], then ``(x − 0.5) / 0.5``; float32 ``[3, T, H, W]``."""
    x = frames.float()
    lo = x.amin(dim=(1, 2, 3), keepdim=True)
    hi = x.amax(dim=(1, 2, 3), keepdim=True)
    x = (x - lo) / (hi - lo).clamp_min(1e-6)
    return ((x - 0.5) / 0.5).permute(1, 0, 2, 3).contiguous()


def read_input(frames: torch.Tensor, normalization: Normalization) -> torch.Tensor:
    """Frames as read (uint8 RGB), before any resizing or augmentation: unchanged, or the
    release's BGR min–max stretch (``normalization="release"``)."""
    return release_stretch(frames) if normalization == Normalization.release else frames


def to_model_input(frames: torch.Tensor, normalization: Normalization) -> torch.Tensor:
    """Augmented ``uint8 [T, 3, H, W]`` → float ``[3, T, H, W]`` (ImageNet or the release's)."""
    if normalization == Normalization.release:
        return release_normalize(frames)
    return normalize(frames)


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
    """Windows of ``num_frames`` frames over every sequence, for training; with
    ``whole_sequence`` each sequence is one item (T = its length, the release).

    ``per_frame`` draws the augmentation for every frame on its own (the release) instead of
    once per window; ``normalization`` is ``"imagenet"`` or ``"release"`` (:func:`read_input`,
    :func:`to_model_input`).

    Item: ``(clip float32 [3, T, S, S], mask int64 [T, S, S])``.
    """

    def __init__(self, sequences: SequenceABC, num_frames: int, stride: int, size: int,
                 augment: bool = True, margin: int = 32, rotation: float = 5.0,
                 whole_sequence: bool = False, per_frame: bool = False,
                 normalization: Normalization = Normalization.imagenet,
                 decode: MaskDecoder = read_mask) -> None:
        if not sequences:
            raise ValueError("no sequences to train on")
        self.normalization = Normalization(normalization)
        self.sequences = list(sequences)
        self.num_frames, self.whole_sequence = num_frames, whole_sequence
        self.per_frame, self.decode = per_frame, decode
        self.transform = (train_transform(size, margin, rotation) if augment
                          else eval_transform(size))
        self.windows = [Window(i, s) for i, seq in enumerate(self.sequences)
                        for s in ([0] if whole_sequence
                                  else window_starts(len(seq.frames), num_frames, stride))]

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        win = self.windows[index]
        seq = self.sequences[win.sequence]
        length = len(seq.frames) if self.whole_sequence else self.num_frames
        idx = window_indices(win.start, length, len(seq.frames))
        frames, masks = load_sequence([seq.frames[i] for i in idx], [seq.masks[i] for i in idx],
                                      self.decode)
        video, mask = self.augment(read_input(frames, self.normalization), masks)
        return to_model_input(video, self.normalization), mask.long()

    def augment(self, frames: torch.Tensor, masks: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``uint8 [T, 3, H, W]``, ``[T, H, W]`` → augmented ``[T, 3, S, S]``, ``[T, S, S]``."""
        parts = ([(frames[i:i + 1], masks[i:i + 1]) for i in range(len(frames))]
                 if self.per_frame else [(frames, masks)])
        out = [self.transform(tv_tensors.Video(f), tv_tensors.Mask(m)) for f, m in parts]
        return (torch.cat([v.as_subclass(torch.Tensor) for v, _ in out]),
                torch.cat([m.as_subclass(torch.Tensor) for _, m in out]))


class SegmentationSequences(Dataset):
    """Whole sequences for evaluation.

    Item: ``(name, frames float32 [3, L, S, S] (resized, normalised), masks uint8 [L, H, W]
    (original size))``.
    """

    def __init__(self, sequences: SequenceABC, size: int,
                 normalization: Normalization = Normalization.imagenet,
                 decode: MaskDecoder = read_mask) -> None:
        self.sequences = list(sequences)
        self.resize = eval_transform(size)
        self.normalization, self.decode = Normalization(normalization), decode

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> tuple[str, torch.Tensor, torch.Tensor]:
        seq = self.sequences[index]
        frames, masks = load_sequence(seq.frames, seq.masks, self.decode)
        frames = self.resize(read_input(frames, self.normalization))
        return seq.name, to_model_input(frames, self.normalization), masks
