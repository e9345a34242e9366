"""Mask images → class-index maps, for the masks annotation tools export.

Three encodings, from the dataset's classes (``classes.yaml``, :mod:`.classes`):

- ``binary`` (no classes file): 0 is background, any other value the one foreground class
  (JPEG: values above 127, so compression noise around 0 stays background);
- ``grey``: ``name: value`` — index masks (0, 1, 2, … as CVAT or Label Studio export them,
  palette PNGs included: their indices are the values) and grey-value masks (CholecSeg8k's
  watershed masks); RGB files with equal channels read as grey;
- ``colour``: ``name: [r, g, b]`` (CholecSeg8k's colour masks).

JPEG masks are lossy: each pixel takes the nearest declared value (compression moves values,
most of all at the edges between colours). In a lossless mask a value that is not declared is
an error listing the values found and the file, unless ``ignore_index`` names it (those
pixels become :data:`IGNORE` and count in no loss or metric).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from endofm.data.datasets.records import DatasetError
from endofm.data.formats.classes import ClassSet

IGNORE = 255  # the index of pixels no loss or metric counts (``data.ignore_index``)
LOSSY_SUFFIXES = (".jpg", ".jpeg")
BACKGROUND_NAMES = ("background", "black background", "bg", "_background_")


def background_index(classes: ClassSet) -> int | None:
    """The background class: one named background, else the one whose value is 0 / black;
    ``None`` when every class is a foreground class."""
    for i, name in enumerate(classes.names):
        if name.strip().lower() in BACKGROUND_NAMES:
            return i
    for i, value in enumerate(classes.values or ()):
        if value in (0, (0, 0, 0)):
            return i
    return None


@dataclass(frozen=True)
class MaskCodec:
    """How a dataset's mask files map to class indices (``decode``)."""

    classes: ClassSet
    encoding: str  # binary | grey | colour
    ignore_value: int | None = None

    @classmethod
    def binary(cls, foreground: str = "foreground") -> MaskCodec:
        return cls(ClassSet(("background", foreground), (0, 1), (0, 255)), "binary")

    @classmethod
    def from_declared(cls, declared: dict[str, Any], ignore_value: int | None) -> MaskCodec:
        values = tuple(tuple(v) if isinstance(v, list) else v for v in declared.values())
        encoding = "colour" if isinstance(values[0], tuple) else "grey"
        ids = tuple(range(len(values))) if encoding == "colour" else tuple(int(v) for v in values)
        return cls(ClassSet(tuple(declared), ids, values), encoding, ignore_value)

    def to_json(self) -> dict[str, Any]:
        return {"encoding": self.encoding, "ignore_value": self.ignore_value}

    @classmethod
    def from_json(cls, classes: ClassSet, meta: dict[str, Any]) -> MaskCodec:
        return cls(classes, meta["encoding"], meta.get("ignore_value"))

    def decode(self, path: Path) -> np.ndarray:
        """Class indices ``uint8 [H, W]`` of a mask file (:data:`IGNORE` where ignored)."""
        raw = read_mask_values(path, colour=self.encoding == "colour")
        lossy = Path(path).suffix.lower() in LOSSY_SUFFIXES
        if self.encoding == "binary":
            return (raw > (127 if lossy else 0)).astype(np.uint8)
        table = np.array(self.classes.values, dtype=np.float32).reshape(len(self.classes), -1)
        if self.ignore_value is not None and self.encoding == "grey":
            table = np.concatenate([table, [[self.ignore_value]]])
        keys = pack(raw)
        uniques, inverse = np.unique(keys, return_inverse=True)
        values = unpack(uniques, table.shape[1]).astype(np.float32)  # [values, 1 or 3]
        dist = np.linalg.norm(values[:, None, :] - table[None], axis=-1)  # [values, classes]
        nearest = dist.argmin(1)
        bad = dist[np.arange(len(values)), nearest] > 0
        if bad.any() and not lossy:
            raise DatasetError(path, undeclared_message(values[bad], self))
        index = nearest.astype(np.uint8)
        if self.ignore_value is not None and self.encoding == "grey":
            index[nearest == len(self.classes)] = IGNORE
        return index[inverse.reshape(-1)].reshape(raw.shape[:2])

    def far_from_declared(self, path: Path) -> tuple[float, Any]:
        """``(share, value)``: the share of a mask's pixels farther from every declared value
        than half the smallest distance between two declared values (at least 40), and the
        commonest such raw value (``None`` when there is none). In a lossy (JPEG) mask, which
        :meth:`decode` snaps to the nearest declared value, compression moves the values at the
        edges between classes a little; a large share far from all of them is most likely a
        class the classes file does not declare."""
        if self.encoding == "binary":
            return 0.0, None
        raw = read_mask_values(path, colour=self.encoding == "colour")
        table = np.array(self.classes.values, dtype=np.float32).reshape(len(self.classes), -1)
        uniques, counts = np.unique(pack(raw), return_counts=True)
        values = unpack(uniques, table.shape[1]).astype(np.float32)
        nearest = np.linalg.norm(values[:, None, :] - table[None], axis=-1).min(1)
        between = np.linalg.norm(table[:, None] - table[None], axis=-1)
        gap = between[~np.eye(len(table), dtype=bool)].min() if len(table) > 1 else 80.0
        far = nearest > max(40.0, gap / 2)
        if not far.any():
            return 0.0, None
        commonest = values[far][counts[far].argmax()]
        value = tuple(int(c) for c in commonest) if len(commonest) > 1 else int(commonest[0])
        return float(counts[far].sum() / counts.sum()), value

    def values_seen(self, path: Path) -> set:
        """The distinct raw values of a mask file (``int`` or ``(r, g, b)``)."""
        raw = read_mask_values(path, colour=self.encoding == "colour")
        if raw.ndim == 3:
            return {tuple(int(c) for c in v) for v in np.unique(raw.reshape(-1, 3), axis=0)}
        return {int(v) for v in np.unique(raw)}


def pack(raw: np.ndarray) -> np.ndarray:
    """One int64 per pixel: the grey value, or ``r << 16 | g << 8 | b``."""
    if raw.ndim == 2:
        return raw.astype(np.int64).reshape(-1)
    rgb = raw.reshape(-1, 3).astype(np.int64)
    return rgb[:, 0] << 16 | rgb[:, 1] << 8 | rgb[:, 2]


def unpack(keys: np.ndarray, channels: int) -> np.ndarray:
    """``[n, channels]`` values of :func:`pack` keys."""
    if channels == 1:
        return keys[:, None]
    return np.stack([keys >> 16 & 255, keys >> 8 & 255, keys & 255], 1)


def undeclared_message(values: np.ndarray, codec: MaskCodec) -> str:
    shown = [tuple(int(c) for c in v) if len(v) > 1 else int(v[0]) for v in values[:12]]
    declared = ", ".join(f"{n}: {v}" for n, v in zip(codec.classes.names,
                                                     codec.classes.values or (), strict=True))
    return (f"mask values {shown}{' …' if len(values) > 12 else ''} are not declared "
            f"(declared: {declared}); add them to classes.yaml or set data.ignore_index")


def read_mask_values(path: Path, colour: bool) -> np.ndarray:
    """Raw mask values: ``[H, W, 3]`` uint8 for colour masks, else ``[H, W]`` integers (palette
    PNGs: the palette indices; RGB files with equal channels: that channel)."""
    try:
        with Image.open(path) as image:
            if colour:
                return np.asarray(image.convert("RGB"))
            if image.mode in ("RGB", "RGBA"):
                rgb = np.asarray(image.convert("RGB"))
                if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
                    return rgb[..., 0]
                return np.asarray(image.convert("L"))
            if image.mode in ("1", "LA"):
                return np.asarray(image.convert("L"))
            return np.asarray(image)
    except OSError as exc:
        raise DatasetError(path, f"cannot read mask ({exc})") from exc
