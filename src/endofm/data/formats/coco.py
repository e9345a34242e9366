"""The ``coco`` format (detection and segmentation): COCO instances files as CVAT, Label
Studio and others export them, COCO-VID included.

``--data`` is a COCO JSON file, or a folder with ``annotations/*train*.json``,
``*val*.json``, ``*test*.json`` (each file is that split; one file without a split name is the
whole dataset). Image ``file_name``s resolve against ``data.image_root`` (default: the file's
folder, its ``images/``, and the dataset folder — above ``annotations/`` — and its
``images/``; a ``file_name`` with a tool's folder prefix also matches by its name).

- Categories keep their own ids and names (model labels ``1..C`` follow the ids' order).
- ``bbox`` ``[x, y, w, h]`` or, without one, the box of the ``segmentation`` (polygons or
  RLE, read by pycocotools); ``iscrowd`` regions are not training targets and count in COCO AP
  as COCO counts them (ignored).
- Images without annotations are negatives (COCO's convention) or, with
  ``data.unannotated=skip``, unlabelled frames that only serve as neighbours (files that
  annotate keyframes only and list every frame).
- Videos: COCO-VID (``videos``, images with ``video_id`` and ``frame_id``) orders each
  video's frames, so a clip is a frame and its neighbours; ``data.video_of=prefix`` takes the
  video from the file name before its last number (``<video>_<frame>.jpg``); plain COCO images
  are single frames.

For segmentation (:func:`read_coco_masks`) the annotations are drawn as index masks
(:class:`CocoMasks`): background and one class per category.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from endofm.data.datasets.records import CvcSequence, DatasetError, KumcFrame, KumcVideo, report
from endofm.data.formats.classes import ClassSet
from endofm.data.formats.masks import IGNORE
from endofm.data.formats.records import LabelledData
from endofm.data.formats.splits import SPLITS, SplitPlan, plan_from_files

logger = logging.getLogger(__name__)

BOX_TOLERANCE = 1.0  # pixels a box may pass the image border (rounding in exports); clipped
UNANNOTATED = ("negative", "skip")
VIDEO_OF = ("auto", "video_id", "prefix", "none")


def annotation_files(root: Path) -> list[tuple[str | None, Path]]:
    """``[(split or None, file)]`` of a COCO file or an ``annotations/`` folder."""
    if root.is_file():
        return [(None, root)]
    folder = root / "annotations" if (root / "annotations").is_dir() else root
    files = sorted(folder.glob("*.json"))
    named = [(next((s for s in SPLITS if s in f.stem.lower()), None), f) for f in files]
    tagged = [(s, f) for s, f in named if s is not None]
    if tagged:
        return tagged
    if len(files) == 1:
        return [(None, files[0])]
    raise DatasetError(root, "no COCO file: want a .json file, or annotations/*train*.json, "
                       f"*val*.json, *test*.json (found {len(files)} .json files)")


def load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(path, f"not a readable JSON file ({exc})") from exc
    missing = [k for k in ("images", "annotations", "categories") if k not in data]
    if missing:
        raise DatasetError(path, f"not a COCO instances file (no {', '.join(missing)})")
    check_ids(path, data)
    return data


ID_FIELDS = {"images": ("id",), "categories": ("id",), "annotations": ("image_id", "category_id"),
             "videos": ("id",)}


def check_ids(path: Path, data: dict[str, Any]) -> None:
    """COCO ids are integers: the first entry whose id is not one is an error naming it (a
    missing ``image_id`` / ``category_id`` is reported per annotation later)."""
    for section, fields in ID_FIELDS.items():
        for n, entry in enumerate(data.get(section, [])):
            if not isinstance(entry, dict):
                raise DatasetError(path, f"{section}[{n}] is not an object: {str(entry)[:40]}")
            for key in fields:
                value = entry.get(key, 0 if section == "annotations" else None)
                if isinstance(value, bool) or not isinstance(value, int):
                    raise DatasetError(path, f"{section}[{n}]: {key} {value!r} is not an integer "
                                       "(COCO ids are integers)")


def image_roots(file: Path, root: Path, setting: str | None) -> list[Path]:
    if setting:
        return [Path(setting)]
    base = root if root.is_dir() else root.parent
    if base.name == "annotations":
        base = base.parent
    found = [file.parent, file.parent / "images", base, base / "images"]
    return list(dict.fromkeys(found))


def resolve_image(name: str, roots: list[Path]) -> Path | None:
    """The image file of a ``file_name`` (Windows separators read as ``/``): as given, under
    each root, else by its name alone under each root."""
    path = Path(name.replace("\\", "/"))
    if path.is_absolute():
        return path if path.is_file() else None
    for base in roots:
        if (base / path).is_file():
            return base / path
    for base in roots:  # exports that keep a tool's own folder prefix: match the file name
        if (base / path.name).is_file():
            return base / path.name
    return None


def category_set(files: list[dict[str, Any]]) -> ClassSet:
    """The categories of every file (the same id must keep one name), ordered by id."""
    names: dict[int, str] = {}
    for data in files:
        for cat in data["categories"]:
            cid, name = int(cat["id"]), str(cat["name"])
            if names.setdefault(cid, name) != name:
                raise DatasetError(cat.get("_file", "categories"), f"category id {cid} is "
                                   f"{names[cid]!r} in one file and {name!r} in another")
    order = sorted(names)
    return ClassSet(tuple(names[c] for c in order), tuple(order))


def annotation_box(ann: dict[str, Any], height: int, width: int) -> np.ndarray | None:
    """``xyxy`` of an annotation's ``bbox``, else of its segmentation's extent (polygons: of
    their points). ``ValueError`` names a segmentation that is neither (:func:`polygons`,
    :func:`rle_of`)."""
    seg = ann.get("segmentation")
    points = polygons(seg) if isinstance(seg, list) else None
    rle = rle_of(seg, height, width) if seg and points is None else None
    if ann.get("bbox"):
        x, y, w, h = (float(v) for v in ann["bbox"])
        return np.array([x, y, x + w, y + h], np.float64)
    if points:
        every = np.concatenate([np.asarray(p, np.float64).reshape(-1, 2) for p in points])
        return np.concatenate([every.min(0), every.max(0)])
    if rle is None:
        return None
    x, y, w, h = mask_utils.toBbox(rle)
    return np.array([x, y, x + w, y + h], np.float64)


def polygons(seg: list) -> list[list[float]]:
    """COCO polygons, each a flat ``[x1, y1, x2, y2, …]`` of at least 3 points; a polygon that
    is not is a ``ValueError`` (pycocotools would read a 4-number one as a box)."""
    for k, poly in enumerate(seg):
        if (not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in poly)):
            shown = repr(poly) if len(repr(poly)) < 60 else repr(poly)[:57] + "..."
            raise ValueError(f"polygon {k} is not 3 or more x, y points: {shown}")
    return seg


def rle_of(seg: Any, height: int, width: int) -> dict[str, Any]:
    """One pycocotools RLE of a COCO segmentation: polygons (:func:`polygons`) or an RLE,
    compressed or not, of the image's size. ``ValueError`` names what does not fit."""
    if isinstance(seg, list):
        return mask_utils.merge(mask_utils.frPyObjects(polygons(seg), height, width))
    if not (isinstance(seg, dict) and "counts" in seg and "size" in seg):
        raise ValueError(f"segmentation is neither polygons nor an RLE with counts and size: "
                         f"{str(seg)[:60]}")
    size = [int(v) for v in seg["size"]]
    if height and width and size != [height, width]:
        raise ValueError(f"RLE size {size} is not the image's [height, width] "
                         f"[{height}, {width}]")
    counts = seg["counts"]
    if isinstance(counts, list):
        return mask_utils.frPyObjects({"size": size, "counts": counts}, *size)
    return {"size": size, "counts": counts.encode() if isinstance(counts, str) else counts}


def check_box(box: np.ndarray | None, width: int, height: int) -> tuple[np.ndarray | None, str]:
    """The box clipped to the image (within :data:`BOX_TOLERANCE`), or ``None`` and why."""
    if box is None:
        return None, "has neither bbox nor segmentation"
    if box[2] <= box[0] or box[3] <= box[1]:
        return None, f"empty box {box.round(1).tolist()} (xyxy)"
    t = BOX_TOLERANCE
    if width and height and (box[0] < -t or box[1] < -t or box[2] > width + t
                             or box[3] > height + t):
        return None, f"box {box.round(1).tolist()} (xyxy) outside the {width}x{height} image"
    if width and height:
        box = np.clip(box, 0, [width, height, width, height])
    return box, ""


def video_key(image: dict[str, Any], videos: dict[int, str], video_of: str) -> tuple[str, float]:
    """``(video name, frame order)`` of an image under ``data.video_of``."""
    name = str(image["file_name"])
    numbers = re.findall(r"\d+", Path(name).stem)
    order = float(image.get("frame_id", numbers[-1] if numbers else image["id"]))
    if video_of in ("auto", "video_id") and "video_id" in image:
        vid = image["video_id"]
        return videos.get(vid, f"video_{vid}"), order
    if video_of == "video_id":
        raise DatasetError(name, "data.video_of=video_id but the image has no video_id")
    if video_of == "prefix" and numbers:
        stem = Path(name).stem
        cut = stem.rfind(numbers[-1])
        prefix = stem[:cut].rstrip("_-. ") or Path(name).parent.name
        return f"{Path(name).parent.as_posix()}/{prefix}".lstrip("./"), order
    return Path(name).with_suffix("").as_posix(), 0.0


def read_file(split: str | None, file: Path, data: dict[str, Any], classes: ClassSet,
              roots: list[Path], unannotated: str, video_of: str,
              errors: list | None, segments: dict | None = None
              ) -> list[tuple[str | None, KumcVideo]]:
    """The videos of one COCO file (frames in order), with its split."""
    label_of = {cid: i + 1 for i, cid in enumerate(classes.ids)}
    images = {int(im["id"]): im for im in data["images"]}
    by_image: dict[int, list[dict]] = defaultdict(list)
    for ann in data["annotations"]:
        where = f"{file}: annotation {ann.get('id')}"
        if int(ann.get("image_id", -1)) not in images:
            report(errors, where, f"its image_id {ann.get('image_id')} is not in images")
            continue
        if int(ann.get("category_id", -1)) not in label_of:
            report(errors, where, f"category_id {ann.get('category_id')} is not a category")
            continue
        by_image[int(ann["image_id"])].append(ann)
    videos = {int(v["id"]): str(v.get("name", v.get("file_name", v["id"])))
              for v in data.get("videos", [])}
    grouped: dict[str, list[tuple[float, KumcFrame]]] = defaultdict(list)
    for image_id, image in images.items():
        path = resolve_image(str(image["file_name"]), roots)
        if path is None:
            report(errors, f"{file}: image {image_id}",
                   f"{image['file_name']} not found under {', '.join(map(str, roots))}")
            continue
        frame, kept = image_frame(file, image, path, by_image.get(image_id, []), label_of,
                                  unannotated, errors)
        if segments is not None:
            segments[str(path)] = (int(image.get("height") or 0), int(image.get("width") or 0),
                                   tuple((label_of[int(a["category_id"])], a.get("segmentation"),
                                          a.get("bbox"), int(a.get("iscrowd", 0)))
                                         for a in kept))
        name, order = video_key(image, videos, video_of)
        grouped[name].append((order, frame))
    out = []
    for name, frames in sorted(grouped.items()):
        frames.sort(key=lambda of: (of[0], of[1].image.name))
        out.append((split, KumcVideo(name, [f for _, f in frames])))
    return out


def image_frame(file: Path, image: dict[str, Any], path: Path, anns: list[dict],
                label_of: dict[int, int], unannotated: str, errors: list | None
                ) -> tuple[KumcFrame, list[dict]]:
    """One image's frame (its boxes, crowd regions, and whether it is a target) and the
    annotations kept; the others are reported."""
    width, height = int(image.get("width") or 0), int(image.get("height") or 0)
    boxes, labels, crowd, crowd_labels, kept = [], [], [], [], []
    for ann in anns:
        try:
            box, problem = check_box(annotation_box(ann, height, width), width, height)
        except ValueError as exc:
            box, problem = None, str(exc)
        if box is None:
            report(errors, f"{file}: annotation {ann.get('id')} ({image['file_name']})", problem)
            continue
        kept.append(ann)
        target = (crowd, crowd_labels) if ann.get("iscrowd", 0) else (boxes, labels)
        target[0].append(box)
        target[1].append(label_of[int(ann["category_id"])])
    annotated = bool(anns) or unannotated == "negative"
    return KumcFrame(path, np.asarray(boxes, np.float32).reshape(-1, 4),
                     np.asarray(labels, np.int64), annotated,
                     np.asarray(crowd, np.float32).reshape(-1, 4),
                     np.asarray(crowd_labels, np.int64)), kept


def read_coco(root: str | Path, image_root: str | None = None, unannotated: str = "negative",
              video_of: str = "auto", errors: list[dict[str, str]] | None = None,
              known: ClassSet | None = None, segments: dict | None = None) -> LabelledData:
    """Every video of the COCO file(s) at ``root`` (module docstring). An annotation whose
    image is missing or whose box is empty or outside its image, an unknown category, or an
    image file that is not found is an error (with ``errors`` given: reported and left out).
    ``known``: a trained model's categories (the data's must be among them, by id)."""
    if unannotated not in UNANNOTATED:
        raise ValueError(f"data.unannotated must be one of {UNANNOTATED}, got {unannotated!r}")
    if video_of not in VIDEO_OF:
        raise ValueError(f"data.video_of must be one of {VIDEO_OF}, got {video_of!r}")
    root = Path(root)
    files = [(split, file, load_json(file)) for split, file in annotation_files(root)]
    classes = category_set([data for _, _, data in files])
    if known is not None:
        unknown = set(classes.ids) - set(known.ids)
        if unknown:
            raise DatasetError(root, f"category ids {sorted(unknown)} are not the model's "
                               f"({dict(zip(known.ids, known.names, strict=True))})")
        classes = known
    if not classes.names:
        raise DatasetError(root, "no categories")
    videos: list[tuple[str | None, KumcVideo]] = []
    for split, file, data in files:
        roots = image_roots(file, root, image_root)
        videos += read_file(split, file, data, classes, roots, unannotated, video_of, errors,
                            segments)
    if not any(f.annotated for _, v in videos for f in v.frames):
        raise DatasetError(root, "no annotated image was found")
    items = [v for _, v in videos]
    plan = plan_from_files(items, lambda v: v.name, root if root.is_dir() else root.parent,
                           [s for s, _ in videos])
    return LabelledData(plan, classes, False, errors if errors is not None else [])


BACKGROUND = "background"


@dataclass(frozen=True)
class CocoMasks:
    """Index masks drawn from COCO annotations (the segmentation task's ``coco`` format):
    ``decode(frame)`` → ``uint8 [H, W]``, 0 = background, ``k`` = the ``k``-th category
    (polygons, RLE or, without a segmentation, the box; later annotations paint over earlier
    ones); ``iscrowd`` regions are :data:`~endofm.data.formats.masks.IGNORE`."""

    classes: ClassSet  # background first, then the categories
    regions: dict[str, tuple[int, int, tuple]]  # frame path → (H, W, annotations)
    encoding: str = "coco"
    ignore_value: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"encoding": self.encoding, "ignore_value": None}

    def decode(self, path: Path) -> np.ndarray:
        height, width, anns = self.regions[str(path)]
        if not (height and width):
            with Image.open(path) as image:
                width, height = image.size
        out = np.zeros((height, width), np.uint8)
        for label, seg, bbox, crowd in anns:
            region = rasterise(seg, bbox, height, width)
            out[region] = IGNORE if crowd else label
        return out


def rasterise(seg: Any, bbox: Any, height: int, width: int) -> np.ndarray:
    """bool ``[H, W]`` of a polygon / RLE segmentation (or the box without one)."""
    if not seg:
        x, y, w, h = (float(v) for v in bbox)
        seg = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    return mask_utils.decode(rle_of(seg, height, width)).astype(bool)


def read_coco_masks(root: str | Path, image_root: str | None = None,
                    unannotated: str = "negative", video_of: str = "auto",
                    errors: list[dict[str, str]] | None = None,
                    known: ClassSet | None = None) -> LabelledData:
    """COCO annotations as segmentation sequences (frames in video order, each frame its own
    mask source): the classes are ``background`` and the categories (``known``: a trained
    segmenter's classes, background included). With ``unannotated=skip`` frames without
    annotations are left out of the sequences (a log line counts them)."""
    segments: dict = {}
    categories = None if known is None else ClassSet(known.names[1:], known.ids[1:])
    data = read_coco(root, image_root, unannotated, video_of, errors, categories, segments)
    if BACKGROUND in data.classes.names:
        raise DatasetError(root, f"a category is named {BACKGROUND!r}: background is every "
                           "pixel no annotation covers")
    classes = known or ClassSet((BACKGROUND, *data.classes.names), (0, *data.classes.ids))
    sequences, tags, skipped = [], [], 0
    for video, tag in zip(data.plan.items, data.plan.tags, strict=True):
        frames = [f.image for f in video.frames if f.annotated]
        skipped += len(video.frames) - len(frames)
        if frames:
            sequences.append(CvcSequence(video.name, frames, frames))
            tags.append(tag)
    if skipped:
        logger.info("%s: %d frames without annotations left out (data.unannotated=skip)",
                    root, skipped)
    plan = SplitPlan(sequences, tags, lambda s: s.name)
    return LabelledData(plan, classes, False, data.errors, CocoMasks(classes, segments))
