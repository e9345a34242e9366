"""Clip sampling as frame-index arrays, clamped to the video.

The release's clip convention: a clip of ``num_frames`` frames with stride ``frame_step`` is
defined at a reference rate ``target_fps`` (30), so it spans ``num_frames * frame_step /
target_fps`` seconds whatever the video's own fps; in the video's frames that is
``window_frames = num_frames * frame_step / target_fps * fps``. Frames inside a window are
picked evenly with :func:`evenly_spaced` (``linspace`` truncated to integers and clamped), the
release's ``temporal_sampling``.

Training takes one random window per video; evaluation takes ``num_clips`` windows: one centred
window when ``num_clips == 1``, otherwise windows whose starts are evenly spread from the first
to the last possible start (so the video's beginning and end are both covered).
"""

from __future__ import annotations

import numpy as np
import torch


def window_frames(num_frames: int, frame_step: int, fps: float,
                  target_fps: float = 30.0) -> int:
    """Length in the video's frames of a ``num_frames x frame_step`` clip at ``target_fps``."""
    if num_frames <= 0 or frame_step <= 0 or fps <= 0 or target_fps <= 0:
        raise ValueError("num_frames, frame_step, fps and target_fps must be positive")
    return max(1, round(num_frames * frame_step / target_fps * fps))


def evenly_spaced(start: float, end: float, num: int, length: int) -> np.ndarray:
    """``num`` indices evenly over ``[start, end]``, truncated and clamped to ``[0, length-1]``.

    Returns int64 ``[num]``.
    """
    index = np.linspace(start, end, num).astype(np.int64)
    return np.clip(index, 0, length - 1)


def random_window(video_frames: int, length: int,
                  generator: torch.Generator | None = None) -> np.ndarray:
    """Consecutive indices of a random window of ``min(length, video_frames)`` frames.

    Returns int64 ``[min(length, video_frames)]``.
    """
    length = min(length, video_frames)
    start = int(torch.randint(0, video_frames - length + 1, (1,), generator=generator))
    return np.arange(start, start + length, dtype=np.int64)


def eval_window_starts(video_frames: int, length: int, num_clips: int) -> np.ndarray:
    """Start frames of ``num_clips`` evaluation windows of ``length`` frames. Returns int64."""
    if num_clips <= 0:
        raise ValueError(f"num_clips must be positive, got {num_clips}")
    delta = max(video_frames - length, 0)
    if num_clips == 1:
        return np.array([delta // 2], dtype=np.int64)
    return np.linspace(0, delta, num_clips).round().astype(np.int64)


def release_test_clip(video_frames: int, fps: float, num_frames: int, frame_step: int,
                      target_fps: float = 30.0) -> np.ndarray:
    """The release's PolypDiag test clip as its code runs
    (docs/release.md#polypdiag-classification): one window starting at frame 0, ``num_frames``
    indices ``linspace(0, window - 1)`` with the window unrounded (``num_frames * frame_step /
    target_fps * fps``) in float32, truncated, then clamped to the last frame (so a video shorter
    than the window repeats its last frame). int64 [T]."""
    window = num_frames * frame_step / target_fps * fps
    index = torch.linspace(0, window - 1, num_frames)
    return index.clamp(0, video_frames - 1).long().numpy()


def train_clip(video_frames: int, fps: float, num_frames: int, frame_step: int,
               target_fps: float = 30.0, generator: torch.Generator | None = None) -> np.ndarray:
    """A random training clip: ``num_frames`` indices evenly over a random window. int64 [T]."""
    window = random_window(video_frames, window_frames(num_frames, frame_step, fps, target_fps),
                           generator)
    return evenly_spaced(window[0], window[-1], num_frames, video_frames)


def eval_clips(video_frames: int, fps: float, num_frames: int, frame_step: int,
               num_clips: int = 1, target_fps: float = 30.0) -> np.ndarray:
    """``num_clips`` evaluation clips (centred, or spread over the video). int64 [num_clips, T]."""
    length = min(window_frames(num_frames, frame_step, fps, target_fps), video_frames)
    starts = eval_window_starts(video_frames, length, num_clips)
    return np.stack([evenly_spaced(s, s + length - 1, num_frames, video_frames) for s in starts])
