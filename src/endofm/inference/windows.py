"""Sliding windows over a whole video, as frame-index arrays.

Window ``k`` covers frames ``k*S + j*R`` for ``j`` in ``0..T-1``, for every ``k`` with
``k*S < N`` (``N`` frames in the video, ``T`` frames per window, ``R`` the frame step, ``S`` the
stride, both in frames). Indices past the end are clamped to the last frame; such a window is
*partial*. Defaults follow the release's downstream sampling: ``R`` = 32 frames at 30 fps
(rescaled for other frame rates) and ``S = T*R`` (adjacent windows).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

RELEASE_FRAME_STEP = 32  # the release's sampling rate, in frames at 30 fps
RELEASE_FPS = 30.0

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
    seconds (``"2s"``), or ``None`` for the defaults (release rate; adjacent windows)."""

    num_frames: int = 8
    frame_step: str | int | None = None
    stride: str | int | None = None

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be at least 1, got {self.num_frames}")
        for name, span in (("frame step", self.frame_step), ("stride", self.stride)):
            if span is not None:
                parse_span(span, name)

    def resolve(self, fps: float) -> tuple[int, int]:
        """``(R, S)`` in frames for a video at ``fps``."""
        if self.frame_step is None:
            step = max(1, round(RELEASE_FRAME_STEP * fps / RELEASE_FPS))
        else:
            step = span_frames(self.frame_step, fps, "frame step")
        stride = (self.num_frames * step if self.stride is None
                  else span_frames(self.stride, fps, "stride"))
        return step, stride

    def plan(self, video_frames: int, fps: float, offset: int = 0) -> WindowPlan:
        """The windows of ``video_frames`` frames starting at frame ``offset``."""
        step, stride = self.resolve(fps)
        return WindowPlan(video_frames, fps, self.num_frames, step, stride, offset)


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

    def __getitem__(self, k: int) -> Window:
        if not 0 <= k < len(self):
            raise IndexError(f"window {k} out of range ({len(self)} windows)")
        raw = k * self.stride + self.step * np.arange(self.num_frames, dtype=np.int64)
        last = self.video_frames - 1
        frames = self.offset + np.minimum(raw, last)
        return Window(k, frames, bool(raw[-1] > last), self.fps)
