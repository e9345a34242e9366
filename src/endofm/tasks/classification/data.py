"""PolypDiag clips as released: 8 frames at sampling rate 32 (30 fps reference); training with
a random short-side scale, a random crop and a flip; testing on temporally spread clips × spatial
crops. Frames stay uint8 until the final normalisation.

Beyond the release (off by default): an endoscope has no "up", so ``vflip`` and ``rot90``
complete the horizontal flip to the eight flips and quarter turns of the square crop; and
``jitter_p`` applies a colour jitter (``jitter``: brightness, contrast, saturation, hue; one
draw for all frames of a clip) with that probability, against lighting and colour that differ
between videos (and between hospitals)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.utils.data import Dataset

from endofm.data import VideoItem, open_video
from endofm.data.clips import VideoClipsConfig, frame_span, random_crop
from endofm.data.sampling import train_clip
from endofm.data.transforms import (
    color_jitter,
    hflip,
    normalize,
    short_side_resize,
    to_clip,
    vflip,
)
from endofm.utils.checks import require_in_range


@dataclass
class ClassificationDataConfig(VideoClipsConfig):
    """The classification task's ``data`` section: the clip settings and the training
    augmentations beyond the release's flip (module docstring)."""

    format: str = "auto"  # auto | polypdiag | manifest | folders (endofm.data.formats)
    classes_file: str | None = None  # class order (and names) for manifest/folders data
    vflip: bool = False  # random vertical flip (p = 0.5) of training clips
    rot90: bool = False  # random quarter turn (0-3 × 90°) of training clips
    jitter_p: float = 0.0  # probability a training clip gets colour jitter
    # colour jitter strengths: brightness, contrast, saturation, hue (one draw per clip)
    jitter: list[float] = field(default_factory=lambda: [0.4, 0.4, 0.2, 0.05])

    def __post_init__(self) -> None:
        super().__post_init__()
        require_in_range(self, "data", 0, 1, "jitter_p")
        if len(self.jitter) != 4 or min(self.jitter) < 0 or self.jitter[3] > 0.5:
            raise ValueError("data.jitter takes four strengths >= 0 (brightness, contrast, "
                             f"saturation, hue <= 0.5) (got {self.jitter})")


def augment(clip: Tensor, cfg: ClassificationDataConfig) -> Tensor:
    """The training flips, quarter turns and colour jitter of uint8 ``[T, 3, S, S]``."""
    if cfg.flip and torch.rand(()) < 0.5:
        clip = hflip(clip)
    if cfg.vflip and torch.rand(()) < 0.5:
        clip = vflip(clip)
    if cfg.rot90:
        clip = clip.rot90(int(torch.randint(0, 4, ())), dims=(-2, -1))
    if cfg.jitter_p > 0 and torch.rand(()) < cfg.jitter_p:
        clip = color_jitter(clip, *cfg.jitter)
    return clip


class TrainClips(Dataset):
    """``clips_per_video`` random clips per video (or per ``start``–``end`` window) per epoch:
    ``(clip [3, T, S, S], label)``; with ``num_classes`` (multi-label items) the label is a
    float ``[C]`` 0/1 vector."""

    def __init__(self, items: Sequence[VideoItem], cfg: ClassificationDataConfig,
                 num_classes: int | None = None) -> None:
        sides = list(cfg.train_short_side)  # checked here: evaluation does not use it
        if len(sides) != 2 or not cfg.crop_size <= sides[0] <= sides[1]:
            raise ValueError(f"data.train_short_side must be [lo, hi] with data.crop_size="
                             f"{cfg.crop_size} <= lo <= hi (the training crop is cut from a "
                             f"frame of short side in that range), got {sides}")
        self.items, self.cfg, self.num_classes = list(items), cfg, num_classes

    def __len__(self) -> int:
        return len(self.items) * self.cfg.clips_per_video

    def __getitem__(self, i: int) -> tuple[Tensor, int | Tensor]:
        cfg, item = self.cfg, self.items[i % len(self.items)]
        video = open_video(item.path, cfg.folder_fps)
        first, count = frame_span(item, video)
        idx = first + train_clip(count, video.fps, cfg.num_frames, cfg.frame_step,
                                 cfg.target_fps)
        lo, hi = cfg.train_short_side
        side = int(torch.randint(lo, hi + 1, (1,)))
        clip = short_side_resize(to_clip(video.read(idx)), side)
        clip = augment(random_crop(clip, cfg.crop_size), cfg)
        return normalize(clip, cfg.mean, cfg.std), self.target(item)

    def target(self, item: VideoItem) -> int | Tensor:
        """The class index, or (multi-label) float ``[C]`` 0/1 over ``num_classes``."""
        if self.num_classes is None or item.labels is None:
            return item.label
        out = torch.zeros(self.num_classes)
        out[list(item.labels)] = 1.0
        return out
