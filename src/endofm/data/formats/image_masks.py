"""The ``image_masks`` format (segmentation): frames and their mask images.

Two layouts:

- ``DIR/images/…`` and ``DIR/masks/…`` with the same relative paths and stems (the mask may
  carry ``data.mask_suffix`` and any image extension: Kvasir-SEG's ``masks/<id>.jpg``); a
  CVAT "Segmentation mask" / Pascal VOC export is this layout under its own names:
  ``JPEGImages/`` and ``SegmentationClass/`` (``SegmentationObject/``'s instance masks are not
  read), its classes in ``labelmap.txt`` and its splits in ``ImageSets/Segmentation/``;
  other names are ``data.image_folder`` / ``data.mask_folder`` (SUN-SEG: ``Frame`` and
  ``GT``), where one whole ``*`` component matches a video's folder whose frames are that
  video (EndoVis 2018: ``*/left_frames`` and ``*/labels``);
- masks beside the frames, named ``<frame stem><mask_suffix>.<ext>`` (default ``_mask``;
  CholecSeg8k: ``frame_80_endo.png`` + ``frame_80_endo_mask.png``, or
  ``data.mask_suffix=_color_mask`` / ``_watershed_mask`` for its other masks).

A sub-folder holds the frames of one video (ordered by the number in the file name), so a
training clip is neighbouring frames; images directly in ``images/`` (or ``DIR``) are single
frames (T = 1). Classes: :mod:`endofm.data.formats.masks` (``data.classes_file``, else
``classes.yaml`` or ``labelmap.txt`` in ``DIR``; without one the masks are binary).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from endofm.data.datasets.records import CvcSequence, DatasetError, report
from endofm.data.formats.classes import read_declared
from endofm.data.formats.masks import MaskCodec
from endofm.data.formats.records import LabelledData
from endofm.data.formats.splits import plan_from_files
from endofm.data.images import is_mask_like, natural_key
from endofm.data.video import IMAGE_EXTENSIONS

IMAGE_FOLDERS = ("images", "JPEGImages")
MASK_FOLDERS = ("masks", "labels", "annotations", "SegmentationClass")


def first_folder(root: Path, names: tuple[str, ...]) -> Path | None:
    return next((root / n for n in names if (root / n).is_dir()), None)


def mask_folder_of(root: Path) -> Path | None:
    return first_folder(root, MASK_FOLDERS)


def is_tree_layout(root: Path) -> bool:
    return first_folder(root, IMAGE_FOLDERS) is not None and mask_folder_of(root) is not None


def find_mask(folder: Path, stem: str, suffix: str) -> Path | None:
    """``folder/<stem><suffix>.<ext>`` or (``suffix`` may be absent) ``folder/<stem>.<ext>``."""
    for name in (f"{stem}{suffix}", stem) if suffix else (stem,):
        for ext in sorted(IMAGE_EXTENSIONS):
            for candidate in (folder / f"{name}{ext}", folder / f"{name}{ext.upper()}"):
                if candidate.is_file():
                    return candidate
    return None


def frame_files(base: Path, skip_masks: bool) -> list[Path]:
    return [p for p in base.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
            and not (skip_masks and is_mask_like(p))]


@dataclass
class FramePairs:
    """Frames with their masks under one frames folder ``base``: its sub-folders are videos
    and its loose frames single frames, or (``video``) all of them are that one video."""

    base: Path
    pairs: list[tuple[Path, Path]]
    video: str | None = None


def folder_pairs(root: Path, image_folder: str | None, mask_folder: str | None
                 ) -> list[tuple[str | None, Path, Path]]:
    """``[(video, frames folder, masks folder)]``: the known names or the settings; with a
    ``*`` component, one entry per matching frames folder (``video``: what ``*`` matched)."""
    images_setting, masks_setting = image_folder or "", mask_folder or ""
    if "*" not in images_setting + masks_setting:
        images = named_folder(root, image_folder, IMAGE_FOLDERS, "data.image_folder")
        masks = named_folder(root, mask_folder, MASK_FOLDERS, "data.mask_folder")
        if (image_folder or mask_folder) and (images is None or masks is None):
            key, names = (("data.image_folder", IMAGE_FOLDERS) if images is None
                          else ("data.mask_folder", MASK_FOLDERS))
            raise DatasetError(root, f"no {' or '.join(n + '/' for n in names)} folder here: "
                               f"set {key} as well")
        return [] if images is None or masks is None else [(None, images, masks)]
    star = wildcard_component(images_setting, "data.image_folder")
    if wildcard_component(masks_setting, "data.mask_folder") is None or star is None:
        raise DatasetError(root, "data.image_folder and data.mask_folder both need the * of a "
                           f"video's folder (got {image_folder!r} and {mask_folder!r})")
    found = []
    for images in sorted(p for p in root.glob(images_setting) if p.is_dir()):
        video = images.relative_to(root).parts[star]
        masks = root / masks_setting.replace("*", video)
        if not masks.is_dir():
            raise DatasetError(masks, f"no mask folder for the frames in {images} "
                               f"(data.mask_folder={mask_folder})")
        found.append((video, images, masks))
    if not found:
        raise DatasetError(root, f"no folder matches data.image_folder={image_folder}")
    return found


def named_folder(root: Path, setting: str | None, known: tuple[str, ...], key: str
                 ) -> Path | None:
    """``root/setting`` (an error if it is not a folder), else the first known name there."""
    if not setting:
        return first_folder(root, known)
    if not (root / setting).is_dir():
        raise DatasetError(root / setting, f"no such folder ({key} is relative to the data "
                           "folder)")
    return root / setting


def wildcard_component(setting: str, key: str) -> int | None:
    """The index of the one path component that is ``*`` (``None`` without one)."""
    parts = Path(setting).parts
    stars = [i for i, part in enumerate(parts) if "*" in part]
    if len(stars) > 1 or any(parts[i] != "*" for i in stars):
        raise DatasetError(setting, f"{key}: at most one '*', as a whole folder name "
                           "(e.g. */left_frames)")
    return stars[0] if stars else None


def pair_tree(images: Path, masks: Path, suffix: str, errors: list | None
              ) -> list[tuple[Path, Path]]:
    """``[(frame, mask)]`` with the same relative path and stem; a frame without a mask, or a
    mask without a frame, is reported."""
    pairs, used = [], set()
    for frame in sorted(frame_files(images, False)):
        rel = frame.parent.relative_to(images)
        mask = find_mask(masks / rel, frame.stem, suffix)
        if mask is None:
            report(errors, frame, f"no mask for this frame under {masks / rel}")
            continue
        pairs.append((frame, mask))
        used.add(mask)
    for orphan in sorted(set(frame_files(masks, False)) - used):
        report(errors, orphan, f"mask without a frame under {images}")
    return pairs


def pair_frames(root: Path, suffix: str, errors: list | None, image_folder: str | None = None,
                mask_folder: str | None = None) -> list[FramePairs]:
    """Every frame with its mask: in frames and masks folders (:func:`folder_pairs`), else
    masks named ``<frame stem><suffix>`` beside the frames."""
    folders = folder_pairs(root, image_folder, mask_folder)
    if folders:
        return [FramePairs(images, pair_tree(images, masks, suffix, errors), video)
                for video, images, masks in folders]
    masks = mask_folder_of(root)
    collected: list[dict[str, str]] = []
    pairs = pairs_beside(root, suffix or "_mask", collected)
    if not pairs and masks is not None:
        raise DatasetError(root, f"{masks.name}/ holds masks but there is no images/ or "
                           "JPEGImages/ folder beside it (an export without its images? CVAT "
                           "exports them with 'Save images'; other names: data.image_folder)")
    for error in collected:
        report(errors, error["path"], error["reason"])
    return [FramePairs(root, pairs)]


def pairs_beside(root: Path, suffix: str, errors: list) -> list[tuple[Path, Path]]:
    """``[(frame, mask)]`` with masks named ``<frame stem><suffix>.<ext>`` beside the frames;
    frames without one are reported."""
    pairs = []
    for frame in sorted(p for p in frame_files(root, True)
                        if not p.stem.endswith(suffix)):
        mask = find_mask(frame.parent, f"{frame.stem}{suffix}", "")
        if mask is None:
            report(errors, frame, f"no mask {frame.stem}{suffix}.* beside this frame")
            continue
        pairs.append((frame, mask))
    return pairs


def group_sequences(found: FramePairs) -> list[CvcSequence]:
    """One sequence per sub-folder of ``found.base`` (frames in number order), named by its
    path under ``found.video`` if set; loose frames one each, or (``video``) one sequence."""
    folders: dict[Path, list[tuple[Path, Path]]] = {}
    singles = []
    for frame, mask in found.pairs:
        if frame.parent == found.base and found.video is None:
            singles.append(CvcSequence(frame.stem, [frame], [mask]))
        else:
            folders.setdefault(frame.parent, []).append((frame, mask))
    sequences = []
    for folder, members in sorted(folders.items()):
        members.sort(key=lambda fm: natural_key(fm[0]))
        name = folder.relative_to(found.base).as_posix()
        if found.video is not None:
            name = found.video if name == "." else f"{found.video}/{name}"
        sequences.append(CvcSequence(name, [f for f, _ in members], [m for _, m in members]))
    return sequences + sorted(singles, key=lambda s: s.name)


def mask_codec(root: Path, classes_file: str | None, ignore_index: int | None) -> MaskCodec:
    """The classes file's codec (``data.classes_file``, ``classes.yaml``, a CVAT/VOC
    ``labelmap.txt``), else binary masks."""
    declared = read_declared(root, classes_file)
    if declared is None:
        if ignore_index is not None:
            raise DatasetError(root, "data.ignore_index needs a classes.yaml (binary masks "
                               "take every non-zero value as foreground)")
        return MaskCodec.binary()
    return MaskCodec.from_declared(declared, ignore_index)


def read_image_masks(root: str | Path, classes_file: str | None = None,
                     mask_suffix: str = "_mask", ignore_index: int | None = None,
                     errors: list[dict[str, str]] | None = None,
                     known: MaskCodec | None = None, image_folder: str | None = None,
                     mask_folder: str | None = None) -> LabelledData:
    """Every frame with its mask under ``root`` as sequences (module docstring); split
    files (``DIR/splits/`` or ``DIR/ImageSets/Segmentation/`` ``{train,val,test}.txt``) list
    sequences (sub-folder paths or names) or stems. ``known``: a trained model's codec, used
    instead of the data's classes file. ``image_folder`` / ``mask_folder``: the folders'
    names under ``root`` where they are not the known ones (module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "image_masks format: not a directory")
    codec = known or mask_codec(root, classes_file, ignore_index)
    found = pair_frames(root, mask_suffix, errors, image_folder, mask_folder)
    if not any(f.pairs for f in found):
        raise DatasetError(root, "no frame with a mask (want images/ + masks/, JPEGImages/ + "
                           "SegmentationClass/, or masks named "
                           f"<frame>{mask_suffix or '_mask'}.png beside the frames)")
    sequences = [seq for f in found for seq in group_sequences(f)]
    plan = plan_from_files(sequences, lambda s: s.name, root)
    return LabelledData(plan, codec.classes, False, errors if errors is not None else [],
                        codec)
