"""Tool presence annotations (Cholec80 ``tool_annotations/videoNN-tool.txt``): a header
``Frame<TAB>Grasper<TAB>…`` and one row every 25 frames with a 0/1 per tool."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from endofm.data.phase.labels import AnnotationError, frame_step, read_rows


@dataclass(frozen=True)
class ToolTrack:
    """``present`` uint8 ``[N, K]`` (row ``k`` covers ``[k / rate, (k + 1) / rate)`` s) for the
    tools ``names``."""

    names: tuple[str, ...]
    present: np.ndarray
    rate: float

    def at(self, times_s: np.ndarray) -> np.ndarray:
        """Presence at each of ``times_s`` ``[M]`` → uint8 ``[M, K]`` (clamped to the track)."""
        rows = np.floor(np.asarray(times_s, dtype=np.float64) * self.rate + 1e-9).astype(int)
        return self.present[np.clip(rows, 0, len(self.present) - 1)]


def read_tool_file(path: str | Path, frame_fps: float = 25.0) -> ToolTrack:
    """A tool file as a :class:`ToolTrack`; a value other than 0/1 is an error naming its line.

    Args:
        path: the file.
        frame_fps: what the ``Frame`` column counts per second (25: the video's frames).
    """
    path = Path(path)
    header, rows = read_rows(path)
    if len(header) < 2:
        raise AnnotationError(path, "line 1: expected Frame and at least one tool column")
    step = frame_step(path, rows, 0)
    values = np.zeros((len(rows), len(header) - 1), dtype=np.uint8)
    for i, row in enumerate(rows):
        if any(v not in ("0", "1") for v in row[2:]):
            raise AnnotationError(path, f"line {row[0]}: tool presence must be 0 or 1, got "
                                        f"{row[2:]}")
        values[i] = [int(v) for v in row[2:]]
    return ToolTrack(tuple(h.strip() for h in header[1:]), values, frame_fps / step)
