"""The ``voc`` format (detection): one Pascal VOC XML file per image, as LabelImg, CVAT
("PASCAL VOC 1.1"), Roboflow and others export boxes.

Two layouts:

- ``DIR/Annotations/…/<stem>.xml`` with the images under ``DIR/JPEGImages/`` (or
  ``DIR/images/``) at the same relative path, named by the XML's ``<filename>`` or its stem;
- the XML files beside their images (LabelImg's default).

A sub-folder holds one video's frames, ordered by the number in their names, so a clip is an
annotated frame and its neighbours; files straight in the folder are single frames, or (with
``data.video_of=prefix``) the frames of the video their name starts with
(``<video>_<frame>.xml``). Each ``<object>`` is a box (``<bndbox>``: ``xmin ymin xmax ymax``
in pixels) of the class ``<name>``; an object marked ``<difficult>1</difficult>`` is no
training target and a region COCO AP ignores, as VOC's own evaluation does. An XML without
objects is a negative frame. Classes: ``data.classes_file`` (a list of names, or a CVAT
``labelmap.txt``, whose ``background`` is left out), else ``classes.yaml`` or ``labelmap.txt``
in ``DIR``, else the names found, sorted. Splits: ``ImageSets/Main/{train,val,test}.txt``
(:mod:`.splits`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from endofm.data.datasets.records import DatasetError, KumcFrame, KumcVideo, report
from endofm.data.formats.classes import ClassSet, read_declared
from endofm.data.formats.coco import check_box, resolve_image, video_key
from endofm.data.formats.records import LabelledData
from endofm.data.formats.splits import plan_from_files
from endofm.data.images import natural_key
from endofm.data.video import IMAGE_EXTENSIONS
from endofm.data.voc_xml import VocFile, parse_voc_file

ANNOTATION_FOLDER = "Annotations"
IMAGE_FOLDERS = ("JPEGImages", "images")
VIDEO_OF = ("auto", "prefix", "none")
BACKGROUND_NAMES = ("background", "_background_")


def is_voc(root: Path) -> bool:
    """``DIR/Annotations/`` holding XML files, or XML files beside images in ``DIR``."""
    if not root.is_dir():
        return False
    if (root / ANNOTATION_FOLDER).is_dir():
        return any((root / ANNOTATION_FOLDER).rglob("*.xml"))
    return any(xml.with_suffix(ext).is_file() for xml in root.glob("*.xml")
               for ext in (".jpg", ".png", ".jpeg"))


def annotation_pairs(root: Path) -> list[tuple[Path, Path, Path | None]]:
    """``(xml, its path under the annotations folder, the folder of its image or None)``
    per file, in name order."""
    folder = root / ANNOTATION_FOLDER
    if folder.is_dir():
        images = next((root / n for n in IMAGE_FOLDERS if (root / n).is_dir()), None)
        xmls = sorted(folder.rglob("*.xml"), key=natural_key)
        return [(x, x.relative_to(folder), None if images is None else
                 images / x.relative_to(folder).parent) for x in xmls]
    return [(x, x.relative_to(root), x.parent) for x in sorted(root.rglob("*.xml"),
                                                                 key=natural_key)]


def find_image(folder: Path | None, filename: str | None, stem: str) -> Path | None:
    """The image ``<filename>`` names in ``folder`` (:func:`~.coco.resolve_image`: as given,
    else by its name alone), else ``stem.<ext>``."""
    if folder is None:
        return None
    named = resolve_image(filename, [folder]) if filename else None
    if named is not None:
        return named
    for ext in sorted(IMAGE_EXTENSIONS):
        for candidate in (folder / f"{stem}{ext}", folder / f"{stem}{ext.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def declared_classes(root: Path, classes_file: str | None) -> list[str] | None:
    """The class names of ``data.classes_file`` / ``classes.yaml`` / ``labelmap.txt`` (in
    their order, background left out), or ``None`` without one."""
    declared = read_declared(root, classes_file)
    if declared is None:
        return None
    return [n for n in declared if n.strip().lower() not in BACKGROUND_NAMES]


def frame_of(xml: Path, parsed: VocFile, image: Path, index: dict[str, int],
             errors: list | None) -> KumcFrame | None:
    """The frame's boxes (difficult ones as ignored regions), or ``None`` after reporting a
    box outside its image or a class the model or classes file does not have."""
    if parsed.size is None:
        try:
            with Image.open(image) as opened:
                width, height = opened.size
        except OSError as exc:
            report(errors, image, f"unreadable image ({exc})")
            return None
    else:
        width, height = parsed.size
    boxes, labels, crowd, crowd_labels = [], [], [], []
    for k, obj in enumerate(parsed.objects):
        if obj.name not in index:
            report(errors, xml, f"object {k}: class {obj.name!r} is not one of "
                   f"{sorted(index)} (the classes file's or the model's)")
            return None
        box, problem = check_box(obj.box, width, height)
        if box is None:
            report(errors, xml, f"object {k} ({obj.name}): {problem}")
            return None
        target = (crowd, crowd_labels) if obj.difficult else (boxes, labels)
        target[0].append(box)
        target[1].append(index[obj.name] + 1)
    return KumcFrame(image, np.asarray(boxes, np.float32).reshape(-1, 4),
                     np.asarray(labels, np.int64), True,
                     np.asarray(crowd, np.float32).reshape(-1, 4),
                     np.asarray(crowd_labels, np.int64))


def video_and_order(rel: Path, video_of: str) -> tuple[str, float]:
    """A file's video and its place in it (``rel``: its path under the annotations): its
    sub-folder by the last number in its name (files at the top: single frames), by name
    prefix (``prefix``), or every file its own (``none``)."""
    if video_of == "prefix":
        return video_key({"file_name": rel.as_posix(), "id": 0}, {}, "prefix")
    if video_of == "none" or rel.parent == Path("."):
        return rel.with_suffix("").as_posix(), 0.0
    numbers = re.findall(r"\d+", rel.stem)
    return rel.parent.as_posix(), float(numbers[-1]) if numbers else 0.0


def read_voc(root: str | Path, classes_file: str | None = None, video_of: str = "auto",
             errors: list[dict[str, str]] | None = None,
             known: ClassSet | None = None) -> LabelledData:
    """Every video of the VOC files under ``root`` (module docstring). A file that does not
    parse, names an unknown class or holds a box outside its image, and an image that is not
    found, is an error (with ``errors`` given: reported and the frame left out). ``known``: a
    trained model's classes, which the files' names must be among."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "voc format: not a directory")
    if video_of not in VIDEO_OF:
        raise DatasetError(root, f"data.video_of must be one of {', '.join(VIDEO_OF)} for VOC "
                           f"files, got {video_of!r}")
    parsed: list[tuple[Path, Path, Path, VocFile]] = []
    for xml, rel, folder in annotation_pairs(root):
        try:
            one = parse_voc_file(xml)
        except ValueError as exc:
            report(errors, xml, str(exc))
            continue
        image = find_image(folder, one.filename, xml.stem)
        if image is None:
            report(errors, xml, f"its image {one.filename or xml.stem + '.*'} is not in "
                   f"{folder if folder is not None else 'JPEGImages/ or images/'}")
            continue
        parsed.append((xml, rel, image, one))
    if not parsed:
        raise DatasetError(root, "no VOC annotation file with its image (want Annotations/ + "
                           "JPEGImages/, or <image>.xml beside each image)")
    names = (list(known.names) if known is not None
             else declared_classes(root, classes_file)
             or sorted({o.name for *_, one in parsed for o in one.objects}))
    if not names:
        raise DatasetError(root, "no class: no file has an <object> and no classes file "
                           "names them")
    index = {n: i for i, n in enumerate(names)}
    grouped: dict[str, list[tuple[float, KumcFrame]]] = defaultdict(list)
    for xml, rel, image, one in parsed:
        frame = frame_of(xml, one, image, index, errors)
        if frame is not None:
            video, order = video_and_order(rel, video_of)
            grouped[video].append((order, frame))
    videos = [KumcVideo(name, [f for _, f in sorted(frames, key=lambda of: (of[0],
                                                                              of[1].image.name))])
              for name, frames in sorted(grouped.items())]
    classes = known or ClassSet(tuple(names), tuple(range(1, len(names) + 1)))
    plan = plan_from_files(videos, lambda v: v.name, root)
    return LabelledData(plan, classes, False, errors if errors is not None else [])

