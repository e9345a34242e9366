"""uint8 clip transforms shared by pre-training and the downstream tasks.

Clips are uint8 tensors ``[T, 3, H, W]``; every spatial op is applied with the same parameters
to all frames of a clip (torchvision.transforms.v2 treats the leading dim as a batch and samples
its random parameters once per call). Resizing and cropping happen on uint8; :func:`normalize`
is the last step and turns a clip into float32 ``[3, T, H, W]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import numpy as np
import torch
import torchvision.transforms as T
import torchvision.transforms.v2 as v2
import torchvision.transforms.v2.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)

Box = tuple[int, int, int, int]  # top, left, height, width


class Interpolation(StrEnum):
    """The resampling of resizes and crops."""

    bicubic = "bicubic"
    bilinear = "bilinear"
    nearest = "nearest"


def interpolation(name: str) -> v2.InterpolationMode:
    """``"bicubic"``/``"bilinear"``/``"nearest"`` → torchvision's interpolation mode."""
    try:
        return v2.InterpolationMode(Interpolation(name.lower()).value)
    except ValueError as exc:
        raise ValueError(f"unknown interpolation {name!r}") from exc


def to_clip(frames: np.ndarray) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` numpy frames → uint8 tensor ``[T, 3, H, W]``."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames [T, H, W, 3], got {frames.dtype} {frames.shape}")
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)


def random_resized_crop_box(height: int, width: int, scale: Sequence[float],
                            ratio: Sequence[float] = (3 / 4, 4 / 3)) -> Box:
    """Sample a RandomResizedCrop box ``(top, left, h, w)`` for a ``height x width`` frame."""
    shape_only = torch.empty((1, 1, 1)).expand(1, height, width)
    return tuple(T.RandomResizedCrop.get_params(shape_only, list(scale), list(ratio)))


def resized_crop(clip: torch.Tensor, box: Box, size: int,
                 mode: str = "bicubic") -> torch.Tensor:
    """Crop ``box`` from every frame of ``clip [T,3,H,W]`` and resize to ``[T,3,size,size]``."""
    top, left, h, w = box
    return F.resized_crop(clip, top, left, h, w, [size, size], interpolation=interpolation(mode),
                          antialias=True)


def short_side_resize(clip: torch.Tensor, size: int, mode: str = "bilinear") -> torch.Tensor:
    """Resize ``[T,3,H,W]`` so that ``min(H, W) == size`` (aspect ratio kept)."""
    return F.resize(clip, [size], interpolation=interpolation(mode), antialias=True)


def center_crop(clip: torch.Tensor, size: int) -> torch.Tensor:
    """Centre ``size x size`` crop of ``[T,3,H,W]``."""
    return F.center_crop(clip, [size, size])


def uniform_crop_boxes(height: int, width: int, size: int, num_crops: int) -> list[Box]:
    """``num_crops`` boxes of ``size`` along the long side (1: centre; 3: start/centre/end)."""
    if num_crops <= 0:
        raise ValueError(f"num_crops must be positive, got {num_crops}")
    size_h, size_w = min(size, height), min(size, width)
    if num_crops == 1:
        offsets = [0.5]
    else:
        offsets = np.linspace(0.0, 1.0, num_crops).tolist()
    if width >= height:
        return [((height - size_h) // 2, round((width - size_w) * o), size_h, size_w)
                for o in offsets]
    return [(round((height - size_h) * o), (width - size_w) // 2, size_h, size_w)
            for o in offsets]


def release_crop_box(height: int, width: int, size: int) -> Box:
    """The release's test crop (``uniform_crop`` with spatial index 0): the left crop of a
    landscape frame, the top crop of a portrait one, centred (rounded up) along the other
    side; a square frame counts as landscape."""
    top, left = -(-(height - size) // 2), -(-(width - size) // 2)
    if height > width:
        top = 0
    else:
        left = 0
    return top, left, size, size


def crop(clip: torch.Tensor, box: Box) -> torch.Tensor:
    """Crop ``box`` from every frame of ``[T,3,H,W]``."""
    return F.crop(clip, *box)


def hflip(clip: torch.Tensor) -> torch.Tensor:
    """Horizontal flip of every frame of ``[T,3,H,W]``."""
    return F.horizontal_flip(clip)


def vflip(clip: torch.Tensor) -> torch.Tensor:
    """Vertical flip of every frame of ``[T,3,H,W]``."""
    return F.vertical_flip(clip)


def color_jitter(clip: torch.Tensor, brightness: float, contrast: float, saturation: float,
                 hue: float) -> torch.Tensor:
    """One random colour jitter (factors and order) applied to all frames of ``[T,3,H,W]``."""
    return v2.ColorJitter(brightness, contrast, saturation, hue)(clip)


def grayscale(clip: torch.Tensor) -> torch.Tensor:
    """Grayscale with 3 output channels, ``[T,3,H,W]``."""
    return F.rgb_to_grayscale(clip, num_output_channels=3)


def normalize(clip: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN,
              std: Sequence[float] = IMAGENET_STD) -> torch.Tensor:
    """uint8 ``[T,3,H,W]`` → normalised float32 ``[3,T,H,W]``."""
    x = clip.to(torch.float32).div_(255.0)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return x.sub_(mean_t).div_(std_t).permute(1, 0, 2, 3).contiguous()


def normalize_batch(clips: torch.Tensor, mean: Sequence[float],
                    std: Sequence[float]) -> torch.Tensor:
    """uint8 (or 0-255 float) ``[B, T, 3, H, W]`` → normalised float32 ``[B, 3, T, H, W]`` (on
    ``clips``'s device; the same arithmetic as :func:`normalize`)."""
    x = clips.to(torch.float32).div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32, device=x.device).view(1, 1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=x.device).view(1, 1, 3, 1, 1)
    return x.sub_(m).div_(s).permute(0, 2, 1, 3, 4).contiguous()


def denormalize(clip: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN,
                std: Sequence[float] = IMAGENET_STD) -> torch.Tensor:
    """Normalised float ``[3,T,H,W]`` → uint8 ``[T,H,W,3]`` for display."""
    mean_t = torch.tensor(mean).view(3, 1, 1, 1)
    std_t = torch.tensor(std).view(3, 1, 1, 1)
    x = (clip * std_t + mean_t).clamp(0, 1).mul(255).round().to(torch.uint8)
    return x.permute(1, 2, 3, 0)
