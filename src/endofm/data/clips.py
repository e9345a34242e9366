"""Labelled video clips (PolypDiag-style): the clip settings, a random crop and the test-time
views of a video (temporally spread clips x spatial crops). Used by the classification task
and the pre-training k-NN monitor. Frames stay uint8 until the final normalisation."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

import torch
from torch import Tensor

from endofm.data.datasets import VideoItem
from endofm.data.sampling import eval_clips, release_test_clip
from endofm.data.transforms import (
    KINETICS_MEAN,
    KINETICS_STD,
    crop,
    normalize,
    release_crop_box,
    short_side_resize,
    to_clip,
    uniform_crop_boxes,
)
from endofm.data.video import VideoError, VideoSource, open_video
from endofm.utils.checks import require_at_least, require_in_range, require_mean_std


class TestProtocol(StrEnum):
    """``centred``: ``test_clips`` clips (one: centred), short side ``test_short_side``,
    ``test_crops`` crops (one: the centre). ``release``: the release's code as it runs: one clip
    from frame 0 (frames clamped to the last one), short side ``crop_size``, the left/top crop
    (docs/release.md#polypdiag-classification)."""

    centred = "centred"
    release = "release"


@dataclass
class VideoClipsConfig:
    """Labelled video clips: frames per clip, sampling rate, crops (train and test)."""

    num_frames: int = 8  # frames per clip the model sees
    frame_step: int = 32  # frames between a clip's frames, counted at target_fps
    # frame rate frame_step counts at; a video at another rate is sampled so that a clip spans
    # num_frames x frame_step / target_fps seconds
    target_fps: float = 30.0
    # [lo, hi]: training clips' short side is resized to a random size in it (px)
    train_short_side: list[int] = field(default_factory=lambda: [256, 320])
    crop_size: int = 224  # side of the square crop fed to the model (px)
    # short side test clips are resized to before their crops (px; centred)
    test_short_side: int = 256
    test_clips: int = 1  # temporal clips per video at test time (averaged)
    test_crops: int = 1  # spatial crops per clip at test time (averaged)
    # how test views are taken: centred (test_clips x test_crops spread views) or release (the
    # release's one clip from frame 0, left/top crop); see TestProtocol
    test_protocol: TestProtocol = TestProtocol.centred
    clips_per_video: int = 1  # random training clips drawn from each video per epoch
    flip: bool = True  # random horizontal flip (p = 0.5) of training clips
    # per-channel (RGB) mean subtracted after scaling pixels to [0, 1]
    mean: list[float] = field(default_factory=lambda: list(KINETICS_MEAN))
    # per-channel (RGB) standard deviation divided by after subtracting mean
    std: list[float] = field(default_factory=lambda: list(KINETICS_STD))
    # frame rate of videos given as folders of frames (files carry their own)
    folder_fps: float = 30.0

    def __post_init__(self) -> None:
        require_at_least(self, "data", 1, "num_frames", "frame_step", "crop_size",
                         "test_clips", "test_crops", "clips_per_video")
        if self.test_short_side < self.crop_size:
            raise ValueError(f"data.test_short_side={self.test_short_side} is smaller than "
                             f"data.crop_size={self.crop_size}, which is cut from it")
        require_in_range(self, "data", 0, math.inf, "target_fps", "folder_fps", low_open=True)
        require_mean_std(self, "data")
        views = (self.test_clips, self.test_crops)
        if self.test_protocol == TestProtocol.release and views != (1, 1):
            raise ValueError("data.test_protocol=release takes one clip and one crop; set "
                             f"data.test_clips=1 data.test_crops=1 (got {self.test_clips}, "
                             f"{self.test_crops})")


def random_crop(clip: Tensor, size: int, gen: torch.Generator | None = None) -> Tensor:
    """A random ``size x size`` crop of uint8 ``[T, 3, H, W]`` (same for all frames)."""
    h, w = clip.shape[-2:]
    top = int(torch.randint(0, h - size + 1, (1,), generator=gen))
    left = int(torch.randint(0, w - size + 1, (1,), generator=gen))
    return clip[..., top:top + size, left:left + size]


def frame_span(item: VideoItem, video: VideoSource) -> tuple[int, int]:
    """``(first frame, frame count)`` of the item's ``start``–``end`` window (seconds) in
    ``video``, or of the whole video. A window starting after the video ends is an error."""
    if item.start is None or item.end is None:
        return 0, video.num_frames
    first = int(item.start * video.fps)
    if first >= video.num_frames:
        raise VideoError(video.path, f"window {item.start:g}-{item.end:g} s starts after the "
                         f"video's end ({video.num_frames / video.fps:.2f} s)")
    last = min(video.num_frames, max(first + 1, math.ceil(item.end * video.fps)))
    return first, last - first


def release_test_view(item: VideoItem, cfg: VideoClipsConfig) -> Tensor:
    """The release's single test view of a video: ``[1, 3, T, S, S]`` float."""
    video = open_video(item.path, cfg.folder_fps)
    first, count = frame_span(item, video)
    idx = first + release_test_clip(count, video.fps, cfg.num_frames, cfg.frame_step,
                                    cfg.target_fps)
    clip = short_side_resize(to_clip(video.read(idx)), cfg.crop_size)
    clip = crop(clip, release_crop_box(*clip.shape[-2:], cfg.crop_size))
    return normalize(clip, cfg.mean, cfg.std)[None]


def test_views(item: VideoItem, cfg: VideoClipsConfig) -> Tensor:
    """All test views of a video (``cfg.test_protocol``): ``[clips*crops, 3, T, S, S]``
    float."""
    if cfg.test_protocol == TestProtocol.release:
        return release_test_view(item, cfg)
    video = open_video(item.path, cfg.folder_fps)
    first, count = frame_span(item, video)
    clips = first + eval_clips(count, video.fps, cfg.num_frames, cfg.frame_step,
                               cfg.test_clips, cfg.target_fps)
    views = []
    for idx in clips:
        clip = short_side_resize(to_clip(video.read(idx)), cfg.test_short_side)
        for box in uniform_crop_boxes(*clip.shape[-2:], cfg.crop_size, cfg.test_crops):
            views.append(normalize(crop(clip, box), cfg.mean, cfg.std))
    return torch.stack(views)
