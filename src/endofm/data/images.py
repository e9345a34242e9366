"""Image files: one reader for frames and masks, and the frame-number sort order."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image


def read_image(path: str | Path, mode: str = "RGB") -> np.ndarray:
    """An image file decoded to ``mode``: uint8 ``[H, W, 3]`` for ``"RGB"``, ``[H, W]`` for
    ``"L"``. An unreadable file is a ``ValueError`` naming it."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert(mode))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read image ({exc})") from exc


def natural_key(path: Path) -> tuple:
    """Sort key: the last number in the file or folder name, then the name."""
    numbers = re.findall(r"\d+", path.stem)
    return (int(numbers[-1]) if numbers else -1, path.name)
