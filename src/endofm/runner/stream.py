"""Streaming windows of many videos through DataLoader workers.

Each dataset item is one window: the worker seeks to its frames, decodes only those (scaled
while decoding) and returns a uint8 clip, so memory holds a few batches whatever the video's
length. Batches never mix videos and come in video order, window order. A window that cannot be
decoded (truncated or corrupt data) is returned as an error instead of a clip, so the readable
windows of the video are kept and the failure is reported.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, pairwise
from typing import Protocol

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from endofm.data import VideoError, VideoSource
from endofm.data.transforms import center_crop, short_side_resize, to_clip
from endofm.runner.windows import Window, WindowPlan


class FrameMaker(Protocol):
    """What the stream asks of its spatial preprocessing: decode the frames of some windows of
    a source → one uint8 clip per window (``[T, 3, H, W]``, or ``[V, T, 3, H, W]`` for ``V``
    views of it)."""

    def apply_many(self, source: VideoSource,
                   windows: Sequence[Sequence[int]]) -> list[Tensor]: ...


@dataclass(frozen=True)
class NativeFrames:
    """Frames at the video's own size (no resize, no crop): for outputs in the video's pixels
    (the model's input is made from them on the device)."""

    def apply(self, source: VideoSource, frames: Sequence[int]) -> Tensor:
        """Decode ``frames`` of ``source`` → uint8 ``[T, 3, H, W]`` at its own size."""
        return self.apply_many(source, [frames])[0]

    def apply_many(self, source: VideoSource, windows: Sequence[Sequence[int]]) -> list[Tensor]:
        frames = source.read([i for w in windows for i in w])
        ends = list(accumulate(len(w) for w in windows))
        return [to_clip(frames[end - len(w):end]) for w, end in zip(windows, ends, strict=True)]

    def output_size(self, source: VideoSource) -> tuple[int, int]:
        """``(H, W)`` of the clips for ``source``: its own."""
        return source.height, source.width

    def describe(self) -> dict[str, object]:
        return {"decoded": "the video's own size"}


@dataclass(frozen=True)
class FrameSize:
    """Spatial preprocessing: the short side resized to ``short_side`` (default ``size``;
    downscaled while decoding), then a centre ``size x size`` crop, or with ``crop=False`` the
    largest centred region whose sides are multiples of ``multiple`` (the patch size).
    ``upscale=False`` keeps smaller videos at their own size."""

    size: int = 224
    crop: bool = True
    short_side: int | None = None
    multiple: int = 16
    upscale: bool = True

    def __post_init__(self) -> None:
        if self.size < self.multiple or self.size % self.multiple:
            raise ValueError(f"size {self.size} must be a positive multiple of {self.multiple}")
        if self.short_side is not None and self.short_side < self.size:
            raise ValueError(f"short side {self.short_side} is smaller than the crop {self.size}")

    def apply(self, source: VideoSource, frames: Sequence[int]) -> Tensor:
        """Decode ``frames`` of ``source`` → uint8 ``[T, 3, H, W]``."""
        return self.apply_many(source, [frames])[0]

    def apply_many(self, source: VideoSource, windows: Sequence[Sequence[int]]) -> list[Tensor]:
        """Decode the frames of several windows of ``source`` in one pass (one seek, each frame
        decoded once) → a uint8 ``[T_k, 3, H, W]`` clip per window."""
        frames = source.read([i for w in windows for i in w], short_side=self.short_side
                             or self.size)
        ends = list(accumulate(len(w) for w in windows))
        return [self.shape(to_clip(frames[end - len(w):end]))
                for w, end in zip(windows, ends, strict=True)]

    def output_size(self, source: VideoSource) -> tuple[int, int]:
        """``(H, W)`` of the clips :meth:`apply` gives for ``source``."""
        h, w = source.output_size(self.short_side or self.size)
        side = self.short_side or self.size
        if self.upscale and min(h, w) != side:
            h, w = (side, int(side * w / h)) if h <= w else (int(side * h / w), side)
        if self.crop:
            return self.size, self.size
        return h - h % self.multiple, w - w % self.multiple

    def describe(self) -> dict[str, object]:
        """The preprocessing as asked for (``run.json``'s settings)."""
        return {"size": self.size, "short_side": self.short_side or self.size,
                "crop": self.crop}

    def shape(self, clip: Tensor) -> Tensor:
        """Resize (a smaller video is upscaled) and crop a decoded uint8 ``[T, 3, H, W]`` clip
        (live inference shapes each frame with it as ``[1, 3, H, W]``)."""
        side = self.short_side or self.size
        if self.upscale and min(clip.shape[-2:]) != side:  # a smaller video is upscaled
            clip = short_side_resize(clip, side)
        if self.crop:
            return center_crop(clip, self.size)
        h, w = clip.shape[-2:]
        m = self.multiple
        top, left = (h % m) // 2, (w % m) // 2
        return clip[..., top:top + h - h % m, left:left + w - w % m]


@dataclass
class VideoJob:
    """One video to stream: an output key (its name relative to its input root), the opened
    source and its window plan."""

    key: str
    source: VideoSource
    plan: WindowPlan


@dataclass
class WindowBatch:
    """Consecutive windows of one video: ``clips`` uint8 ``[b, T, 3, H, W]`` for the windows
    that decoded (``windows``), ``None`` when none did; ``errors`` ``(window, reason)`` for
    the others."""

    job: int
    windows: list[Window]
    clips: Tensor | None
    errors: list[tuple[Window, str]] = field(default_factory=list)
    last: bool = False  # the video's last batch


class WindowDataset(Dataset):
    """Item ``i`` (global window position over ``jobs``) → ``(job, Window, clip | reason)``."""

    def __init__(self, jobs: Sequence[VideoJob], frame_size: FrameMaker) -> None:
        self.jobs, self.frame_size = list(jobs), frame_size
        self.starts = [0, *accumulate(len(j.plan) for j in self.jobs)]

    def __len__(self) -> int:
        return self.starts[-1]

    def locate(self, i: int) -> tuple[int, int]:
        """Global position → ``(job index, window index)``."""
        job = bisect_right(self.starts, i) - 1
        return job, i - self.starts[job]

    def __getitem__(self, i: int) -> tuple[int, Window, Tensor | str]:
        job, k = self.locate(i)
        return self._item(job, self.jobs[job].plan[k])

    def __getitems__(self, positions: list[int]) -> list[tuple[int, Window, Tensor | str]]:
        """The items at ``positions``. Within a batch of one video's windows (what
        :class:`VideoBatches` yields), each run of nearby windows is decoded in one pass:
        adjacent windows would otherwise each seek back to a keyframe and decode the frames
        between them again."""
        located = [self.locate(i) for i in positions]
        if len({job for job, _ in located}) > 1:
            return [self[i] for i in positions]
        job = located[0][0]
        windows = [self.jobs[job].plan[k] for _, k in located]
        return [item for run in nearby_runs(windows) for item in self._decode_run(job, run)]

    def _item(self, job: int, window: Window) -> tuple[int, Window, Tensor | str]:
        try:
            return job, window, self.frame_size.apply_many(self.jobs[job].source,
                                                           [window.frames])[0]
        except VideoError as exc:
            return job, window, exc.reason

    def _decode_run(self, job: int, windows: list[Window]) -> list[tuple[int, Window,
                                                                         Tensor | str]]:
        """One pass over ``windows``; if it fails, window by window, so the readable windows
        of a truncated video are kept."""
        if len(windows) > 1:
            try:
                clips = self.frame_size.apply_many(self.jobs[job].source,
                                                   [w.frames for w in windows])
                return [(job, w, c) for w, c in zip(windows, clips, strict=True)]
            except VideoError:
                pass
        return [self._item(job, w) for w in windows]


def nearby_runs(windows: Sequence[Window]) -> list[list[Window]]:
    """``windows`` (in order) split wherever the gap to the next window is longer than a
    window's span: decoding through a longer gap would cost more than seeking past it."""
    runs = [[windows[0]]]
    for before, after in pairwise(windows):
        span = int(before.frames[-1]) - int(before.frames[0]) + 1
        if int(after.frames[0]) - int(before.frames[-1]) > span:
            runs.append([after])
        else:
            runs[-1].append(after)
    return runs


class VideoBatches:
    """Batch sampler: runs of at most ``batch_size`` positions that never cross a video."""

    def __init__(self, dataset: WindowDataset, batch_size: int) -> None:
        check_loader_settings(batch_size, 0)
        self.dataset, self.batch_size = dataset, batch_size

    def __iter__(self) -> Iterator[list[int]]:
        starts = self.dataset.starts
        for begin, end in zip(starts[:-1], starts[1:], strict=True):
            for s in range(begin, end, self.batch_size):
                yield list(range(s, min(s + self.batch_size, end)))

    def __len__(self) -> int:
        starts = self.dataset.starts
        return sum(-(-(e - b) // self.batch_size) for b, e in zip(starts[:-1], starts[1:],
                                                                   strict=True))


def collate_windows(items: list[tuple[int, Window, Tensor | str]]) -> WindowBatch:
    ok = [(w, c) for _, w, c in items if isinstance(c, Tensor)]
    errors = [(w, c) for _, w, c in items if isinstance(c, str)]
    clips = torch.stack([c for _, c in ok]) if ok else None
    return WindowBatch(items[0][0], [w for w, _ in ok], clips, errors)


def check_loader_settings(batch_size: int, num_workers: int) -> None:
    """``ValueError`` for a batch of no windows or a negative decoding-worker count (callers
    check them up front, before any video is opened)."""
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0 (0 decodes in this process), got "
                         f"{num_workers}")


def stream_windows(jobs: Sequence[VideoJob], frame_size: FrameMaker, batch_size: int,
                   num_workers: int = 0, pin_memory: bool = False) -> Iterator[WindowBatch]:
    """Batches of decoded windows of ``jobs``, in order; ``num_workers`` processes decode
    ahead of the consumer (0 decodes in this process)."""
    check_loader_settings(batch_size, num_workers)
    dataset = WindowDataset(jobs, frame_size)
    if len(dataset) == 0:
        return
    loader = DataLoader(dataset, batch_sampler=VideoBatches(dataset, batch_size),
                        num_workers=num_workers, collate_fn=collate_windows,
                        pin_memory=pin_memory, prefetch_factor=2 if num_workers else None)
    for batch in loader:
        last_window = (batch.windows + [w for w, _ in batch.errors])
        batch.last = max(w.index for w in last_window) == len(jobs[batch.job].plan) - 1
        yield batch
