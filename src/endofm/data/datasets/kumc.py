"""KUMC reader: ``{split}2019/Image/<video>/<n>.jpg`` with one Pascal-VOC file per frame in
``{split}2019/Annotation/<video>/<n>.xml``; a frame whose XML has no ``<object>`` is a
negative (no polyp). Classes: adenomatous = 1, hyperplastic = 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from endofm.data.datasets.records import KumcFrame, KumcVideo, report
from endofm.data.images import natural_key
from endofm.data.voc_xml import parse_voc_file

CLASSES = {"adenomatous": 1, "hyperplastic": 2}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def split_dir(root: Path, split: str) -> Path:
    """``root/{split}2019``, or ``root/{split}`` when only that exists."""
    year = root / f"{split}2019"
    return year if year.is_dir() or not (root / split).is_dir() else root / split


def parse_voc(xml: Path) -> tuple[tuple[int, int] | None, np.ndarray, np.ndarray]:
    """``(size (W, H) or None, boxes float32 [n, 4] xyxy, labels int64 [n])`` of a VOC file
    (:func:`endofm.data.voc_xml.parse_voc_file`; ``<difficult>`` is not read: the release
    trains on every box).

    Raises ``ValueError`` on malformed XML, a missing coordinate, an unknown class or a
    box with ``xmax <= xmin`` or ``ymax <= ymin``.
    """
    parsed = parse_voc_file(xml)
    boxes, labels = [], []
    for obj in parsed.objects:
        name = obj.name.lower()
        if name not in CLASSES:
            raise ValueError(f"unknown class {name!r} (want one of {sorted(CLASSES)})")
        if obj.box[2] <= obj.box[0] or obj.box[3] <= obj.box[1]:
            raise ValueError(f"empty box {obj.box.tolist()}")
        boxes.append(obj.box)
        labels.append(CLASSES[name])
    return (parsed.size, np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
            np.asarray(labels, dtype=np.int64))


def read_frame(image: Path, xml: Path, errors: list[dict[str, str]] | None,
               image_size: tuple[int, int] | None = None) -> KumcFrame | None:
    """One frame's record; ``None`` (after reporting) when its XML is missing or bad.
    ``image_size`` (W, H), when known, bounds the boxes; else the XML's ``<size>`` does."""
    if not xml.is_file():
        report(errors, xml, f"annotation for {image} does not exist")
        return None
    try:
        size, boxes, labels = parse_voc(xml)
    except ValueError as exc:
        report(errors, xml, str(exc))
        return None
    bound = image_size or size
    if bound is not None and len(boxes) and (
            boxes[:, :2].min() < 0 or boxes[:, 2].max() > bound[0] or boxes[:, 3].max() > bound[1]):
        report(errors, xml, f"box outside the {bound[0]}x{bound[1]} image")
        return None
    return KumcFrame(image=image, boxes=boxes, labels=labels)


def read_kumc(root: str | Path, split: str,
              errors: list[dict[str, str]] | None = None) -> list[KumcVideo]:
    """Videos of ``split`` (``"train"``, ``"val"``, ``"test"`` → ``{split}2019``), frames in
    natural order. A frame without an XML file, with malformed XML, an unknown class or a box
    outside the image is an error (with ``errors`` given: that frame is left out)."""
    base = split_dir(Path(root), split)
    images = base / "Image"
    if not images.is_dir():
        raise FileNotFoundError(f"{images}: KUMC image folder not found")
    videos = []
    for folder in sorted((p for p in images.iterdir() if p.is_dir()), key=natural_key):
        files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                       key=natural_key)
        frames = [read_frame(f, base / "Annotation" / folder.name / f"{f.stem}.xml", errors)
                  for f in files]
        kept = [f for f in frames if f is not None]
        if kept:
            videos.append(KumcVideo(name=folder.name, frames=kept))
    return videos
