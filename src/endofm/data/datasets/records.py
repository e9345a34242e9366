"""Plain records returned by the dataset readers, and the error they raise on bad input.

Readers take an optional ``errors`` list: without it the first problem raises
:class:`DatasetError`; with it every problem is appended as ``{"path", "reason"}`` and the
offending item is left out (so ``endofm data inspect`` can list them all).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class DatasetError(ValueError):
    """A dataset file that is missing, unreadable or inconsistent; ``path`` names it."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def report(errors: list[dict[str, str]] | None, path: str | Path, reason: str,
           error: type[DatasetError] = DatasetError) -> None:
    """Raise ``error`` (a :class:`DatasetError`), or append ``{"path", "reason"}`` to ``errors``
    if given."""
    if errors is None:
        raise error(path, reason)
    errors.append({"path": str(path), "reason": reason})


@dataclass(frozen=True)
class VideoItem:
    """A labelled video or a window of one (PolypDiag: label 1 = abnormal, 0 = normal).

    ``start``/``end`` (seconds) limit the clip to that part of the video (``None``: all of it).
    ``labels`` holds every class of a multi-label item (``label`` is then its first one, or -1
    when it has none); ``None`` for single-label data.
    """

    path: Path
    label: int
    start: float | None = None
    end: float | None = None
    labels: tuple[int, ...] | None = None


@dataclass(frozen=True)
class CvcSequence:
    """A CVC-12k sequence: frame and mask image paths in frame order (same length)."""

    name: str
    frames: list[Path]
    masks: list[Path]



@dataclass(frozen=True)
class KumcFrame:
    """A detection frame: ``boxes`` float32 ``[n, 4]`` xyxy pixels, ``labels`` int64 ``[n]``
    in ``1..C`` (KUMC: 1 = adenomatous, 2 = hyperplastic); ``n == 0`` for a frame without
    objects. ``annotated=False``: a frame only seen as a neighbour of annotated ones (no
    target, not scored); ``crowd`` float32 ``[k, 4]``: COCO ``iscrowd`` regions, which only
    COCO AP counts (a detection there is neither a hit nor a false positive)."""

    image: Path
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), dtype=np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), dtype=np.int64))
    annotated: bool = True
    crowd: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), dtype=np.float32))
    crowd_labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), dtype=np.int64))


@dataclass(frozen=True)
class KumcVideo:
    """A KUMC video: its name (the folder under ``Image/``) and its frames in order."""

    name: str
    frames: list[KumcFrame]
