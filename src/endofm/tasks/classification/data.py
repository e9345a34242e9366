"""PolypDiag clips as released: 8 frames at sampling rate 32 (30 fps reference); training with
a random short-side scale, a random crop and a flip; testing on temporally spread clips × spatial
crops. Frames stay uint8 until the final normalisation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Dataset

from endofm.data import VideoItem, open_video
from endofm.data.clips import VideoClipsConfig, random_crop
from endofm.data.sampling import train_clip
from endofm.data.transforms import hflip, normalize, short_side_resize, to_clip


@dataclass
class ClassificationDataConfig(VideoClipsConfig):
    """The classification task's ``data`` section."""


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
