"""Pascal VOC annotation files: one XML per image, its size and its ``<object>`` boxes (read
by the KUMC release reader and the ``voc`` own-data format)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import numpy as np


@dataclass(frozen=True)
class VocBox:
    """One ``<object>``: its class name, ``xyxy`` box and whether it is ``difficult``."""

    name: str
    box: np.ndarray
    difficult: bool


@dataclass(frozen=True)
class VocFile:
    """One annotation file: its image's name, size ``(W, H)`` if given, and its objects."""

    filename: str | None
    size: tuple[int, int] | None
    objects: list[VocBox]


def number(node: ElementTree.Element, tag: str) -> float:
    text = node.findtext(tag)
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"<{tag}> is {text!r}, not a number") from None


def parse_voc_file(xml: Path) -> VocFile:
    """The objects of one VOC file; ``ValueError`` names what does not parse."""
    try:
        tree = ElementTree.parse(xml)
    except ElementTree.ParseError as exc:
        raise ValueError(f"malformed XML ({exc})") from exc
    size_node = tree.find("size")
    size = None
    if size_node is not None and (size_node.findtext("width") or "").strip():
        size = (int(number(size_node, "width")), int(number(size_node, "height")))
    objects = []
    for k, obj in enumerate(tree.iter("object")):
        name = (obj.findtext("name") or "").strip()
        bndbox = obj.find("bndbox")
        if not name or bndbox is None:
            raise ValueError(f"object {k} has no <name> or no <bndbox>")
        box = np.array([number(bndbox, t) for t in ("xmin", "ymin", "xmax", "ymax")])
        difficult = (obj.findtext("difficult") or "0").strip() in ("1", "true", "True")
        objects.append(VocBox(name, box, difficult))
    filename = (tree.findtext("filename") or "").strip() or None
    return VocFile(filename, size, objects)
