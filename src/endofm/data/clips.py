"""Labelled video clips (PolypDiag-style): the clip settings, a random crop and the test-time
views of a video (temporally spread clips x spatial crops). Used by the classification task
and the pre-training k-NN monitor. Frames stay uint8 until the final normalisation."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from endofm.data.datasets import VideoItem
from endofm.data.sampling import eval_clips
from endofm.data.transforms import (
    KINETICS_MEAN,
    KINETICS_STD,
    crop,
    normalize,
    short_side_resize,
    to_clip,
    uniform_crop_boxes,
)
from endofm.data.video import open_video


@dataclass
class VideoClipsConfig:
    """Labelled video clips: frames per clip, sampling rate, crops (train and test)."""

    num_frames: int = 8
    sampling_rate: int = 32
    target_fps: float = 30.0
    train_short_side: list[int] = field(default_factory=lambda: [256, 320])
    crop_size: int = 224
    test_short_side: int = 256
    test_clips: int = 1  # temporal clips per video at test time (averaged)
    test_crops: int = 1  # spatial crops per clip at test time (averaged)
    clips_per_video: int = 1  # random training clips drawn from each video per epoch
    flip: bool = True
    mean: list[float] = field(default_factory=lambda: list(KINETICS_MEAN))
    std: list[float] = field(default_factory=lambda: list(KINETICS_STD))
    folder_fps: float = 30.0


def random_crop(clip: Tensor, size: int, gen: torch.Generator | None = None) -> Tensor:
    """A random ``size x size`` crop of uint8 ``[T, 3, H, W]`` (same for all frames)."""
    h, w = clip.shape[-2:]
    top = int(torch.randint(0, h - size + 1, (1,), generator=gen))
    left = int(torch.randint(0, w - size + 1, (1,), generator=gen))
    return clip[..., top:top + size, left:left + size]


def test_views(item: VideoItem, cfg: VideoClipsConfig) -> Tensor:
    """All test views of a video: ``[clips*crops, 3, T, S, S]`` float."""
    video = open_video(item.path, cfg.folder_fps)
    clips = eval_clips(video.num_frames, video.fps, cfg.num_frames, cfg.sampling_rate,
                       cfg.test_clips, cfg.target_fps)
    views = []
    for idx in clips:
        clip = short_side_resize(to_clip(video.read(idx)), cfg.test_short_side)
        for box in uniform_crop_boxes(*clip.shape[-2:], cfg.crop_size, cfg.test_crops):
            views.append(normalize(crop(clip, box), cfg.mean, cfg.std))
    return torch.stack(views)
