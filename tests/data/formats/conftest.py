"""Small labelled datasets written by the tests themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from endofm.data.video import write_video

COLOURS = {"grasper": (200, 40, 40), "hook": (40, 200, 40), "clipper": (40, 40, 200)}


def tiny_video(path: Path, colour: tuple[int, int, int], frames: int = 8, size: int = 32,
               fps: float = 10.0) -> Path:
    """A ``frames``-frame video of one colour with a moving bright square."""
    video = np.zeros((frames, size, size, 3), np.uint8)
    video[:] = colour
    for t in range(frames):
        video[t, 4 + t:12 + t, 4:12] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, video, fps)
