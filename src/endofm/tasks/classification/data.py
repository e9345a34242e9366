"""PolypDiag clips as released: 8 frames at sampling rate 32 (30 fps reference); training with
a random short-side scale, a random crop and a flip; testing on temporally spread clips × spatial
crops. Frames stay uint8 until the final normalisation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.utils.data import Dataset

from endofm.data import VideoItem, open_video
from endofm.data.sampling import eval_clips, release_test_clip, train_clip
from endofm.data.transforms import (
    KINETICS_MEAN,
    KINETICS_STD,
    crop,
    hflip,
    normalize,
    release_crop_box,
    short_side_resize,
    to_clip,
    uniform_crop_boxes,
)


@dataclass
class ClassificationDataConfig:
    num_frames: int = 8
    sampling_rate: int = 32
    target_fps: float = 30.0
    train_short_side: list[int] = field(default_factory=lambda: [256, 320])
    crop_size: int = 224
    test_short_side: int = 256
    test_clips: int = 1  # temporal clips per video at test time (averaged)
    test_crops: int = 1  # spatial crops per clip at test time (averaged)
    # centred: test_clips clips (one: centred), short side test_short_side, test_crops crops
    # (one: centre). release: the release's code as it runs: one clip from frame 0 (frames
    # clamped to the last one), short side crop_size, the left/top crop (ENDOFM.md §5)
    test_protocol: str = "centred"
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


class TrainClips(Dataset):
    """``clips_per_video`` random clips per video per epoch: ``(clip [3, T, S, S], label)``."""

    def __init__(self, items: Sequence[VideoItem], cfg: ClassificationDataConfig) -> None:
        self.items, self.cfg = list(items), cfg

    def __len__(self) -> int:
        return len(self.items) * self.cfg.clips_per_video

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        cfg, item = self.cfg, self.items[i % len(self.items)]
        video = open_video(item.path, cfg.folder_fps)
        idx = train_clip(video.num_frames, video.fps, cfg.num_frames, cfg.sampling_rate,
                         cfg.target_fps)
        lo, hi = cfg.train_short_side
        side = int(torch.randint(lo, hi + 1, (1,)))
        clip = short_side_resize(to_clip(video.read(idx)), side)
        clip = random_crop(clip, cfg.crop_size)
        if cfg.flip and torch.rand(()) < 0.5:
            clip = hflip(clip)
        return normalize(clip, cfg.mean, cfg.std), item.label


TEST_PROTOCOLS = ("centred", "release")


def release_test_view(item: VideoItem, cfg: ClassificationDataConfig) -> Tensor:
    """The release's single test view of a video: ``[1, 3, T, S, S]`` float."""
    if (cfg.test_clips, cfg.test_crops) != (1, 1):
        raise ValueError("data.test_protocol=release takes one clip and one crop; set "
                         f"data.test_clips=1 data.test_crops=1 (got {cfg.test_clips}, "
                         f"{cfg.test_crops})")
    video = open_video(item.path, cfg.folder_fps)
    idx = release_test_clip(video.num_frames, video.fps, cfg.num_frames, cfg.sampling_rate,
                            cfg.target_fps)
    clip = short_side_resize(to_clip(video.read(idx)), cfg.crop_size)
    clip = crop(clip, release_crop_box(*clip.shape[-2:], cfg.crop_size))
    return normalize(clip, cfg.mean, cfg.std)[None]


def test_views(item: VideoItem, cfg: ClassificationDataConfig) -> Tensor:
    """All test views of a video: ``[clips*crops, 3, T, S, S]`` float."""
    if cfg.test_protocol not in TEST_PROTOCOLS:
        raise ValueError(f"data.test_protocol must be one of {TEST_PROTOCOLS}, "
                         f"got {cfg.test_protocol!r}")
    if cfg.test_protocol == "release":
        return release_test_view(item, cfg)
    video = open_video(item.path, cfg.folder_fps)
    clips = eval_clips(video.num_frames, video.fps, cfg.num_frames, cfg.sampling_rate,
                       cfg.test_clips, cfg.target_fps)
    views = []
    for idx in clips:
        clip = short_side_resize(to_clip(video.read(idx)), cfg.test_short_side)
        for box in uniform_crop_boxes(*clip.shape[-2:], cfg.crop_size, cfg.test_crops):
            views.append(normalize(crop(clip, box), cfg.mean, cfg.std))
    return torch.stack(views)
