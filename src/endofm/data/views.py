"""The pre-training views of Endo-FM (docs/release.md#pre-training-recipe), every number a
setting.

From a window of ``L`` frames (``num_frames x frame_step / target_fps`` seconds, about 8.5 s):

- global view 1: ``global_frames[0]`` (8) frames evenly over window frames ``[0, L - offset]``;
- global view 2: ``global_frames[1]`` (16) frames evenly over ``[offset, L]`` (clamped to L-1);
- local view k: ``local_frames[k]`` (2,2,4,4,8,8,16,16) frames evenly over ``[s, s + L // 8]``
  with ``s`` uniform in ``[0, L - L // 8 - 1]``;

each with its own random resized crop (the same box for all its frames; scale 0.4-1 global,
0.05-0.4 local; bicubic), flip, colour jitter, grayscale and ImageNet normalisation. "Evenly"
is the release's ``linspace`` truncated to integers. A view is first *planned*
(:meth:`PretrainViews.plan`, which exposes the frame indices and crop boxes) and then rendered,
so a dataset decodes only the union of the frames the plans use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from endofm.data import transforms as TF
from endofm.data.sampling import evenly_spaced, window_frames
from endofm.utils.checks import (
    require_at_least,
    require_in_range,
    require_interval,
    require_mean_std,
)


@dataclass
class PretrainViewsConfig:
    """Settings of the view recipe; defaults are the release's."""

    num_frames: int = 8  # with frame_step and target_fps, the window the views are drawn from
    frame_step: int = 32  # with num_frames: window = num_frames x frame_step frames at target_fps
    # frame rate frame_step counts at; a video at another rate is sampled so that the window spans
    # num_frames x frame_step / target_fps seconds
    target_fps: float = 30.0
    min_window_frames: int = 16  # the shortest window (in the video's frames) accepted
    global_size: int = 224  # side of each global view's square crop (px)
    # frames of the 2 global views (spread evenly over the window)
    global_frames: list[int] = field(default_factory=lambda: [8, 16])
    # window frames global view 1 stops before the end and global view 2 starts after the start
    global_offset: int = 5
    # [lo, hi] fraction of the frame's area a global view's random crop covers
    global_scale: list[float] = field(default_factory=lambda: [0.4, 1.0])
    local_size: int = 96  # side of each local view's square crop (px)
    # frames of each local view (one entry per local view)
    local_frames: list[int] = field(default_factory=lambda: [2, 2, 4, 4, 8, 8, 16, 16])
    local_window_divisor: int = 8  # a local view spans window length // this, at a random start
    # [lo, hi] fraction of the frame's area a local view's random crop covers
    local_scale: list[float] = field(default_factory=lambda: [0.05, 0.4])
    # [lo, hi] aspect ratio (width / height) of the random crops
    crop_ratio: list[float] = field(default_factory=lambda: [3 / 4, 4 / 3])
    interpolation: TF.Interpolation = TF.Interpolation.bicubic  # resampling of the crops' resizes
    flip_p: float = 0.5  # probability a view is flipped horizontally
    jitter_p: float = 0.8  # probability a view gets colour jitter
    brightness: float = 0.4  # colour jitter's brightness strength (factor in [1 - b, 1 + b])
    contrast: float = 0.4  # colour jitter's contrast strength (factor in [1 - c, 1 + c])
    saturation: float = 0.2  # colour jitter's saturation strength (factor in [1 - s, 1 + s])
    hue: float = 0.0  # colour jitter's hue shift (in [-h, h])
    grayscale_p: float = 0.2  # probability a view is turned to grayscale
    # per-channel (RGB) mean subtracted after scaling pixels to [0, 1]
    mean: list[float] = field(default_factory=lambda: list(TF.IMAGENET_MEAN))
    # per-channel (RGB) standard deviation divided by after subtracting mean
    std: list[float] = field(default_factory=lambda: list(TF.IMAGENET_STD))
    # frames are decoded at this short side (px) before cropping; null: full size
    decode_short_side: int | None = 256

    def __post_init__(self) -> None:
        require_at_least(self, "views", 1, "num_frames", "frame_step", "global_size",
                         "local_size", "local_window_divisor")
        require_at_least(self, "views", 0, "global_offset", "brightness", "contrast",
                         "saturation")
        require_in_range(self, "views", 0, math.inf, "target_fps", low_open=True)
        require_in_range(self, "views", 0, 1, "flip_p", "jitter_p", "grayscale_p")
        require_in_range(self, "views", 0, 0.5, "hue")
        require_interval(self, "views", 0, 1, "global_scale", "local_scale", low_open=True)
        require_interval(self, "views", 0, math.inf, "crop_ratio", low_open=True)
        if len(self.global_frames) != 2:
            raise ValueError("views.global_frames must list the frame counts of the 2 global "
                             f"views, got {list(self.global_frames)}")
        if min([*self.global_frames, *self.local_frames]) < 1:
            raise ValueError("every view needs at least one frame: views.global_frames="
                             f"{list(self.global_frames)}, views.local_frames="
                             f"{list(self.local_frames)}")
        if self.min_window_frames < max(self.global_offset + 1, self.local_window_divisor + 1):
            raise ValueError(f"views.min_window_frames={self.min_window_frames} is too small for "
                             f"views.global_offset={self.global_offset} and "
                             f"views.local_window_divisor={self.local_window_divisor} (at least "
                             f"{max(self.global_offset, self.local_window_divisor) + 1})")
        require_mean_std(self, "views")
        if self.decode_short_side is not None and self.decode_short_side < 1:
            raise ValueError(f"views.decode_short_side must be >= 1 or null, got "
                             f"{self.decode_short_side}")


@dataclass
class ViewPlan:
    """One view's random choices: window-relative ``frames`` (int64 [T_v]), crop ``box``
    (top, left, h, w) in the decoded frame, output ``size``, and the augmentation coins."""

    frames: np.ndarray
    box: TF.Box
    size: int
    flip: bool
    jitter: bool
    gray: bool


class PretrainViews:
    """Callable: uint8 window ``[L, H, W, 3]`` → list of float ``[3, T_v, S_v, S_v]`` views."""

    def __init__(self, cfg: PretrainViewsConfig | DictConfig | None = None) -> None:
        if isinstance(cfg, DictConfig):
            cfg = OmegaConf.to_object(cfg)
        self.cfg = cfg if cfg is not None else PretrainViewsConfig()

    @property
    def num_views(self) -> int:
        return 2 + len(self.cfg.local_frames)

    def window_length(self, fps: float) -> int:
        """``L``: the window length in frames of a video at ``fps``."""
        c = self.cfg
        return window_frames(c.num_frames, c.frame_step, fps, c.target_fps)

    def temporal_indices(self, length: int) -> list[np.ndarray]:
        """Window-relative frame indices of every view (globals first); int64 arrays."""
        c = self.cfg
        if length < c.min_window_frames:
            raise ValueError(f"window of {length} frames is shorter than min_window_frames="
                             f"{c.min_window_frames}")
        views = [evenly_spaced(0, length - c.global_offset, c.global_frames[0], length),
                 evenly_spaced(c.global_offset, length, c.global_frames[1], length)]
        width = length // c.local_window_divisor
        for num in c.local_frames:
            start = int(torch.randint(0, length - width, (1,)))
            views.append(evenly_spaced(start, start + width, num, length))
        return views

    def plan(self, length: int, height: int, width: int) -> list[ViewPlan]:
        """Random choices of all views for a window of ``length`` frames of ``height x width``."""
        c = self.cfg
        plans = []
        for k, frames in enumerate(self.temporal_indices(length)):
            is_global = k < 2
            scale = c.global_scale if is_global else c.local_scale
            coins = torch.rand(3).tolist()
            plans.append(ViewPlan(
                frames=frames,
                box=TF.random_resized_crop_box(height, width, scale, c.crop_ratio),
                size=c.global_size if is_global else c.local_size,
                flip=coins[0] < c.flip_p,
                jitter=coins[1] < c.jitter_p,
                gray=coins[2] < c.grayscale_p,
            ))
        return plans

    def render(self, clip: torch.Tensor, positions: np.ndarray,
               plans: list[ViewPlan]) -> list[torch.Tensor]:
        """Render ``plans`` from uint8 ``clip [K, 3, H, W]`` holding window frames ``positions``.

        ``positions`` (int64 [K], sorted) are the window-relative indices of ``clip``'s frames.
        Returns float32 ``[3, T_v, S_v, S_v]`` per view.
        """
        return [self._render_one(clip[torch.from_numpy(np.searchsorted(positions, p.frames))], p)
                for p in plans]

    def _render_one(self, frames: torch.Tensor, plan: ViewPlan) -> torch.Tensor:
        c = self.cfg
        x = TF.resized_crop(frames, plan.box, plan.size, c.interpolation)
        if plan.flip:
            x = TF.hflip(x)
        if plan.jitter:
            x = TF.color_jitter(x, c.brightness, c.contrast, c.saturation, c.hue)
        if plan.gray:
            x = TF.grayscale(x)
        return TF.normalize(x, c.mean, c.std)

    def __call__(self, window: np.ndarray) -> list[torch.Tensor]:
        """All views of a uint8 window ``[L, H, W, 3]``."""
        clip = TF.to_clip(window)
        plans = self.plan(clip.shape[0], clip.shape[2], clip.shape[3])
        return self.render(clip, np.arange(clip.shape[0]), plans)


def needed_frames(plans: list[ViewPlan]) -> np.ndarray:
    """Sorted union of the window-relative frames that ``plans`` use. int64 [K]."""
    return np.unique(np.concatenate([p.frames for p in plans]))


def collate_views(batch: list) -> list[torch.Tensor]:
    """Stack per view index: B lists of V views → V tensors ``[B, 3, T_v, S_v, S_v]``.

    Entries that are not a list of views (a dataset's ``Skip`` records) are dropped.
    """
    samples = [views for views in batch if isinstance(views, list)]
    if not samples:
        raise RuntimeError("every sample of the batch was skipped (unreadable videos)")
    return [torch.stack(views) for views in zip(*samples, strict=True)]


def group_by_shape(views: list[torch.Tensor]) -> list[tuple[list[int], torch.Tensor]]:
    """Concatenate same-shaped batched views for one forward each.

    ``views``: V tensors ``[B, 3, T_v, S_v, S_v]``. Returns ``(view indices, [n*B, 3, T, S, S])``
    per distinct shape, in order of first appearance; rows are view-major.
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    for k, v in enumerate(views):
        groups.setdefault(tuple(v.shape), []).append(k)
    return [(idx, torch.cat([views[k] for k in idx])) for idx in groups.values()]
