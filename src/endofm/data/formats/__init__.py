"""Labelled data in the formats annotation tools export, for any number of named classes.

One reader per format, all with the signature ``read(root, options, errors=None) ->
LabelledData`` (the items with their splits and the :class:`ClassSet`):

- ``manifest`` (classification): a CSV/JSONL of ``path,label[,start,end,split]``;
- ``folders`` (classification): ``DIR/[split/]<class>/<video>``;
- ``image_masks`` (segmentation): ``images/`` + ``masks/`` trees or masks beside the frames;
- ``coco`` (detection): COCO instances files, COCO-VID included; ``coco_masks``: the same
  files drawn as index masks for segmentation (the segmentation task's ``coco``);
- ``voc`` (detection): one Pascal VOC XML file per image (LabelImg, CVAT, Roboflow).

:func:`select_items` returns one split of them (splits: :mod:`endofm.data.formats.splits`),
:func:`detect_format` names the format of a folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from endofm.data.formats.classes import ClassSet
from endofm.data.formats.coco import read_coco, read_coco_masks
from endofm.data.formats.folders import read_folders
from endofm.data.formats.image_masks import read_image_masks
from endofm.data.formats.labelled_manifest import SUFFIXES, find_manifest, read_labelled_manifest
from endofm.data.formats.masks import MaskCodec
from endofm.data.formats.records import LabelledData
from endofm.data.formats.splits import SPLITS, SplitPlan
from endofm.data.formats.voc import read_voc


@dataclass(frozen=True)
class FormatOptions:
    """The reader settings of a task's ``data`` section (each format uses its own).
    ``known_classes``: a trained model's classes, which the data's labels are mapped onto
    (evaluating it on data that holds only some of them)."""

    classes_file: str | None = None
    num_classes: int | None = None
    known_classes: ClassSet | None = None
    mask_suffix: str = "_mask"
    ignore_index: int | None = None
    image_folder: str | None = None
    mask_folder: str | None = None
    known_masks: MaskCodec | None = None  # a trained segmenter's mask classes
    image_root: str | None = None
    unannotated: str = "negative"
    video_of: str = "auto"


def _manifest(root: Path, options: FormatOptions, errors: list | None) -> LabelledData:
    return read_labelled_manifest(root, options.classes_file, options.num_classes, errors,
                                  options.known_classes)


def _folders(root: Path, options: FormatOptions, errors: list | None) -> LabelledData:
    return read_folders(root, options.classes_file, errors, options.known_classes)


def _image_masks(root: Path, options: FormatOptions, errors: list | None) -> LabelledData:
    return read_image_masks(root, options.classes_file, options.mask_suffix,
                            options.ignore_index, errors, options.known_masks,
                            options.image_folder, options.mask_folder)


def _coco(root: Path, options: FormatOptions, errors: list | None) -> LabelledData:
    return read_coco(root, options.image_root, options.unannotated, options.video_of, errors,
                     options.known_classes)


def _voc(root: Path, options: FormatOptions, errors: list | None) -> LabelledData:
    return read_voc(root, options.classes_file, options.video_of, errors, options.known_classes)


def _coco_masks(root: Path, options: FormatOptions, errors: list | None) -> LabelledData:
    known = None if options.known_masks is None else options.known_masks.classes
    return read_coco_masks(root, options.image_root, options.unannotated, options.video_of,
                           errors, known)


Reader = Callable[[Path, FormatOptions, "list | None"], LabelledData]
# format name → (the tasks it serves, its reader)
READERS: dict[str, tuple[tuple[str, ...], Reader]] = {
    "manifest": (("classification",), _manifest),
    "folders": (("classification",), _folders),
    "image_masks": (("segmentation",), _image_masks),
    "coco": (("detection",), _coco),
    "voc": (("detection",), _voc),
    "coco_masks": (("segmentation",), _coco_masks),  # the segmentation task's coco
}
OWN_FORMATS = tuple(READERS)


def read_format(fmt: str, root: str | Path, options: FormatOptions,
                errors: list[dict[str, str]] | None = None) -> LabelledData:
    """Every item of ``root`` in format ``fmt``."""
    if fmt not in READERS:
        raise ValueError(f"unknown data format {fmt!r}; choose one of {', '.join(READERS)}")
    return READERS[fmt][1](Path(root), options, errors)


def select_items(data: LabelledData, split: str, test_fraction: float, seed: int) -> list:
    """The items of ``split`` (``train``/``val``/``test``); see :meth:`SplitPlan.select`.
    Single-label classification data carves its test split stratified by class."""
    labelled = bool(data.plan.items) and hasattr(data.plan.items[0], "label")
    label = (lambda it: it.label) if labelled and not data.multi_label else None
    return data.plan.select(split, test_fraction, seed, label)


def detect_classification_format(root: Path) -> str | None:
    """``manifest`` for a CSV/JSONL file (or a folder holding one manifest), ``folders`` for a
    folder of class folders; ``None`` when neither fits."""
    if root.is_file():
        return "manifest" if root.suffix.lower() in SUFFIXES else None
    if not root.is_dir():
        return None
    try:
        find_manifest(root)
        return "manifest"
    except ValueError:
        pass
    if any(p.is_dir() for p in root.iterdir()):
        return "folders"
    return None


__all__ = [
    "OWN_FORMATS",
    "READERS",
    "SPLITS",
    "ClassSet",
    "FormatOptions",
    "LabelledData",
    "MaskCodec",
    "SplitPlan",
    "detect_classification_format",
    "read_format",
    "select_items",
]
