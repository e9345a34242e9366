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


MASK_STEM = re.compile(r"(?:^|[_\-. ])(?:mask|masks|gt|groundtruth|label|labels)$", re.IGNORECASE)


def is_mask_like(path: Path) -> bool:
    """A file named as a mask or label image beside its frame (``frame_80_endo_mask.png``,
    ``..._color_mask.png``, ``1_gt.png``): such files are never taken as frames."""
    return bool(MASK_STEM.search(Path(path).stem))
