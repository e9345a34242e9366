"""Sliding windows over a whole video, as frame-index arrays.

Window ``k`` covers frames ``k*S + j*R`` for ``j`` in ``0..T-1``, for every ``k`` with
``k*S < N`` (``N`` frames in the video, ``T`` frames per window, ``R`` the frame step, ``S`` the
stride, both in frames). Indices past the end are clamped to the last frame; such a window is
*partial*. Defaults follow the release's downstream sampling: ``R`` = 32 frames at 30 fps
(rescaled for other frame rates) and ``S = T*R`` (adjacent windows).

A :class:`CentredPlan` (``WindowSpec(anchor="centre")``) instead puts window ``k``'s middle
frame (position ``T // 2``) on frame ``k*S``, its neighbours ``R`` frames apart, clamped at both
ends: one window per predicted frame (detection).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

RELEASE_FRAME_STEP = 32  # the release's sampling rate, in frames at 30 fps
RELEASE_FPS = 30.0

ANCHORS = ("start", "centre")

_SPAN = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|f)?\s*$")


def parse_span(value: str | int | float, name: str = "span") -> tuple[float, str]:
    """``"32"`` / ``32`` → ``(32, "f")`` (frames); ``"2s"`` → ``(2.0, "s")`` (seconds). A span
    that is not a positive amount, or a frame count that is not whole, is a ``ValueError``
    naming ``name`` (e.g. ``stride``)."""
    if isinstance(value, (int, float)):
        amount, unit = float(value), "f"
    else:
        match = _SPAN.match(str(value))
        if not match:
            raise ValueError(f"invalid {name} {value!r}: give frames (e.g. 32) or seconds "
                             "(e.g. 2s)")
        amount, unit = float(match.group(1)), match.group(2) or "f"
    if unit == "f" and amount != int(amount):
        raise ValueError(f"{name} {value!r}: a frame count must be a whole number")
    if amount <= 0:
        raise ValueError(f"{name} {value!r} must be positive")
    return amount, unit


def span_frames(value: str | int | float, fps: float, name: str = "span") -> int:
    """A span in frames (``"32"``) or seconds (``"2s"``) as a whole number of frames ≥ 1."""
    amount, unit = parse_span(value, name)
    return max(1, round(amount * fps if unit == "s" else amount))


@dataclass(frozen=True)
class WindowSpec:
    """How a video is cut into windows. ``frame_step``/``stride``: frames (int or ``"32"``),
    seconds (``"2s"``), or ``None`` for the defaults (release rate; adjacent windows, or with
    ``anchor="centre"`` one window per frame)."""

    num_frames: int = 8
    frame_step: str | int | None = None
    stride: str | int | None = None
    anchor: str = "start"

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be at least 1, got {self.num_frames}")
        if self.anchor not in ANCHORS:
            raise ValueError(f"anchor must be one of {ANCHORS}, got {self.anchor!r}")
        for name, span in (("frame step", self.frame_step), ("stride", self.stride)):
            if span is not None:
                parse_span(span, name)

    def resolve(self, fps: float) -> tuple[int, int]:
        """``(R, S)`` in frames for a video at ``fps``."""
        if self.frame_step is None:
            step = max(1, round(RELEASE_FRAME_STEP * fps / RELEASE_FPS))
        else:
            step = span_frames(self.frame_step, fps, "frame step")
        if self.stride is not None:
            return step, span_frames(self.stride, fps, "stride")
        return step, 1 if self.anchor == "centre" else self.num_frames * step

    def plan(self, video_frames: int, fps: float, offset: int = 0) -> WindowPlan | CentredPlan:
        """The windows of ``video_frames`` frames starting at frame ``offset``."""
        step, stride = self.resolve(fps)
        if self.anchor == "centre":
            return CentredPlan(video_frames, fps, self.num_frames, step, stride, offset)
        return WindowPlan(video_frames, fps, self.num_frames, step, stride, offset)

    def describe(self) -> dict[str, object]:
        """The spec as asked for, defaults spelled out (``run.json``'s settings: the same
        request gives the same text whatever the videos)."""
        step = (f"{RELEASE_FRAME_STEP} frames at {RELEASE_FPS:g} fps, rescaled to each video"
                if self.frame_step is None else str(self.frame_step))
        if self.stride is not None:
            stride = str(self.stride)
        else:
            stride = "1 frame" if self.anchor == "centre" else "num_frames x frame_step"
        return {"num_frames": self.num_frames, "frame_step": step, "stride": stride}


@dataclass(frozen=True)
class Window:
    """One window: ``frames`` int64 ``[T]`` (clamped), its time span and whether it was clamped.
    ``end_s`` is the end of the last frame, ``(last_frame + 1) / fps``."""

    index: int
    frames: np.ndarray
    partial: bool
    fps: float

    @property
    def first_frame(self) -> int:
        return int(self.frames[0])

    @property
    def last_frame(self) -> int:
        return int(self.frames[-1])

    @property
    def start_s(self) -> float:
        return self.first_frame / self.fps

    @property
    def end_s(self) -> float:
        return (self.last_frame + 1) / self.fps

    def row(self) -> dict[str, object]:
        """The window's ``index.csv`` fields (without the video column)."""
        return {"window": self.index, "first_frame": self.first_frame,
                "last_frame": self.last_frame, "start_s": round(self.start_s, 6),
                "end_s": round(self.end_s, 6), "partial": int(self.partial)}


@dataclass(frozen=True)
class WindowPlan:
    """The windows of one video (``video_frames`` long at ``fps``, or a range of that many
    frames from ``offset``); computed on demand, so a plan costs nothing however long the video
    is. Frame indices are absolute (``offset`` included)."""

    video_frames: int
    fps: float
    num_frames: int
    step: int
    stride: int
    offset: int = 0

    def __len__(self) -> int:
        return -(-self.video_frames // self.stride)  # ceil: every k with k*S < N

    def resolved(self) -> dict[str, object]:
        """What the windows are for this video, in frames and seconds (``run.json``,
        reports)."""
        span = (self.num_frames - 1) * self.step + 1
        return {"windows": len(self), "num_frames": self.num_frames,
                "frame_step_frames": self.step, "frame_step_s": round(self.step / self.fps, 6),
                "stride_frames": self.stride, "stride_s": round(self.stride / self.fps, 6),
                "window_frames": span, "window_s": round(span / self.fps, 6)}

    def __getitem__(self, k: int) -> Window:
        if not 0 <= k < len(self):
            raise IndexError(f"window {k} out of range ({len(self)} windows)")
        raw = k * self.stride + self.step * np.arange(self.num_frames, dtype=np.int64)
        last = self.video_frames - 1
        frames = self.offset + np.minimum(raw, last)
        return Window(k, frames, bool(raw[-1] > last), self.fps)


@dataclass(frozen=True)
class CentredPlan(WindowPlan):
    """Windows centred on the frames they predict: window ``k``'s middle frame (``T // 2``) is
    frame ``k*stride``, its neighbours ``step`` frames apart, clamped to the video."""

    def __getitem__(self, k: int) -> Window:
        if not 0 <= k < len(self):
            raise IndexError(f"window {k} out of range ({len(self)} windows)")
        offsets = (np.arange(self.num_frames, dtype=np.int64) - self.num_frames // 2) * self.step
        raw = k * self.stride + offsets
        frames = np.clip(raw, 0, self.video_frames - 1)
        return Window(k, self.offset + frames, bool((raw != frames).any()), self.fps)


def target_frame(window: Window) -> int:
    """The frame a centred window predicts (its middle frame, never clamped)."""
    return int(window.frames[len(window.frames) // 2])


@dataclass(frozen=True)
class ClipList:
    """Windows given as frame indices: ``clips`` int64 ``[n, T]`` (already within the video),
    e.g. a video's test clips."""

    clips: np.ndarray
    fps: float

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, k: int) -> Window:
        if not 0 <= k < len(self):
            raise IndexError(f"window {k} out of range ({len(self)} windows)")
        return Window(k, np.asarray(self.clips[k], dtype=np.int64), False, self.fps)
