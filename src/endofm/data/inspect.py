"""``endofm data inspect``: count what a dataset folder holds and list every broken item.

Counts (every format reports all keys; 0 or ``{}`` where the format has no such thing):

- ``num_videos``: readable videos (``videos``: files and frame folders; ``polypdiag``: distinct
  listed videos; ``cvc``: distinct ``first length`` sequences of ``train.txt``/``test.txt``;
  ``kumc``: video folders under ``Image/`` with at least one readable frame);
- ``num_frames``: frames decoded from every readable video (each video is decoded in full), or
  image frames that open and decode (CVC: every ``Original/*.tif``; KUMC: every frame image);
- ``label_counts``: PolypDiag: split entries per label (``"0"`` normal, ``"1"`` abnormal) over
  all split files; KUMC: boxes per class name; ``{}`` otherwise;
- ``num_masks``: CVC masks that decode and match their frame's size;
- ``num_boxes``: KUMC boxes in valid annotations;
- ``errors``: ``{"path", "reason"}`` for every unreadable or inconsistent item. A broken video
  is not counted in ``num_videos``/``num_frames``.

Extra keys: PolypDiag ``splits`` (per split file: ``num_videos``, ``label_counts``) and
``unlisted_videos`` (files under ``videos/`` in no split); KUMC ``negative_frames`` (frames
whose valid annotation has no box).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from PIL import Image

from endofm.data.datasets.cvc import image_dirs, read_ranges
from endofm.data.datasets.kumc import CLASSES, IMAGE_SUFFIXES, read_frame
from endofm.data.datasets.polypdiag import read_polypdiag
from endofm.data.formats import FormatOptions
from endofm.data.formats.image_masks import is_tree_layout
from endofm.data.formats.labelled_manifest import is_manifest
from endofm.data.formats.voc import is_voc
from endofm.data.images import natural_key
from endofm.data.inspect_labelled import inspect_boxes, inspect_classification, inspect_masks
from endofm.data.manifest import scan_videos, unsupported_files
from endofm.data.video import VideoError, open_video
from endofm.utils.progress import progress

PHASE_FORMATS = ("cholec80", "autolaparo", "segments")  # endofm.data.phase.LAYOUTS
LABELLED = ("manifest", "folders")  # endofm.data.formats (classification)
OWN_FORMATS = (*LABELLED, "image_masks", "coco", "voc")
FORMATS = ("videos", "polypdiag", "cvc", "kumc", *PHASE_FORMATS, *OWN_FORMATS)
KUMC_SPLITS = ("train", "val", "test")
CLASS_NAMES = {index: name for name, index in CLASSES.items()}


def detect_format(root: Path) -> str:
    """The layout of ``root``: ``polypdiag`` (``splits/`` + ``videos/``), ``cvc``
    (``CVC-ClinicDB/Original``), ``kumc`` (``{split}2019/Image``) or ``videos`` (any video).
    Class folders are not told apart from a folder of videos: give ``--format folders``."""
    if (root / "splits").is_dir() and (root / "videos").is_dir():
        return "polypdiag"
    if image_dirs(root)[0].is_dir():
        return "cvc"
    if any((root / f"{split}2019" / "Image").is_dir() for split in KUMC_SPLITS):
        return "kumc"
    if scan_videos(root):
        return "videos"
    raise ValueError(f"{root}: not a recognised dataset (no PolypDiag splits/+videos/, "
                     "CVC-ClinicDB/Original, KUMC {train,val,test}2019/Image, or video files)")


def image_size(path: Path) -> tuple[int, int]:
    """``(W, H)`` of an image after decoding it fully; ``OSError`` if it cannot be decoded."""
    with Image.open(path) as image:
        image.load()
        return image.size


def count_decoded_frames(path: Path) -> int:
    """Frames of a video (file or frame folder), all decoded; raises :class:`VideoError` if it
    is corrupt, empty or truncated (fewer frames decode than the file's header declares)."""
    return open_video(path).verify()


def _probe(path: Path, errors: list[dict[str, str]]) -> int | None:
    """Decoded frame count of ``path``, or ``None`` after appending the error."""
    try:
        return count_decoded_frames(path)
    except VideoError as exc:
        errors.append({"path": exc.path, "reason": exc.reason})
    except OSError as exc:
        errors.append({"path": str(path), "reason": f"unreadable ({exc})"})
    return None


def _summary(fmt: str, root: Path) -> dict[str, Any]:
    return {"format": fmt, "root": str(root), "num_videos": 0, "num_frames": 0,
            "label_counts": {}, "num_masks": 0, "num_boxes": 0, "errors": []}


def inspect_videos(root: Path) -> dict[str, Any]:
    """A folder of videos / frame folders, scanned recursively; other files are errors."""
    out = _summary("videos", root)
    videos = scan_videos(root)
    if not videos:
        raise ValueError(f"{root}: no video files or frame folders — not a videos dataset")
    out["errors"] += [{"path": str(p), "reason": "not a video file or frame folder"}
                      for p in unsupported_files(root, videos)]
    for video in progress(videos, desc="inspect", unit="video"):
        frames = _probe(video, out["errors"])
        if frames is not None:
            out["num_videos"] += 1
            out["num_frames"] += frames
    return out


def inspect_polypdiag(root: Path) -> dict[str, Any]:
    """Every ``splits/*.txt``; each listed video decoded once; per-split counts in ``splits``."""
    out = _summary("polypdiag", root)
    split_files = sorted((root / "splits").glob("*.txt"))
    if not split_files:
        raise ValueError(f"{root / 'splits'}: no split files (*.txt) — not a PolypDiag dataset")
    frames: dict[Path, int | None] = {}
    labels: Counter[str] = Counter()
    out["splits"] = {}
    for listing in split_files:
        items = read_polypdiag(root, str(listing), errors=out["errors"])
        readable = []
        for item in progress(items, desc=f"inspect {listing.name}", unit="video"):
            if item.path not in frames:
                frames[item.path] = _probe(item.path, out["errors"])
            if frames[item.path] is not None:
                readable.append(item)
        split_labels = Counter(str(item.label) for item in readable)
        labels.update(split_labels)
        out["splits"][listing.stem] = {"num_videos": len(readable),
                                       "label_counts": dict(sorted(split_labels.items()))}
    good = [n for n in frames.values() if n is not None]
    out.update(num_videos=len(good), num_frames=sum(good),
               label_counts=dict(sorted(labels.items())))
    listed = {path.resolve() for path in frames}
    out["unlisted_videos"] = sum(1 for p in scan_videos(root / "videos")
                                 if p.resolve() not in listed)
    return out


def inspect_cvc(root: Path) -> dict[str, Any]:
    """Every ``Original/*.tif`` frame with its ``Ground Truth`` mask; sequences from the split
    files; listed frames that do not exist are errors."""
    out = _summary("cvc", root)
    original, truth = image_dirs(root)
    sizes: dict[int, tuple[int, int]] = {}
    frames = sorted(original.iterdir(), key=natural_key)
    for frame in progress(frames, desc="inspect frames", unit="frame"):
        try:
            sizes[int(frame.stem)] = image_size(frame)
        except (OSError, ValueError) as exc:
            out["errors"].append({"path": str(frame), "reason": f"unreadable frame ({exc})"})
    for index, size in sorted(sizes.items()):
        out["num_masks"] += _check_mask(truth / f"{index}.tif", size, out["errors"])
    frame_names = {frame.name for frame in original.iterdir()}
    out["errors"] += [{"path": str(mask), "reason": "mask without a frame in Original/"}
                      for mask in sorted(truth.glob("*"), key=natural_key)
                      if mask.is_file() and mask.name not in frame_names]
    sequences = set()
    for name in ("train.txt", "test.txt"):
        if (root / name).is_file():
            sequences.update(read_ranges(root / name, out["errors"]))
    for first, length in sorted(sequences):
        missing = [i for i in range(first, first + length) if i not in sizes]
        out["errors"] += [{"path": str(original / f"{i}.tif"),
                           "reason": f"frame of sequence {first}+{length} is missing or unreadable"}
                          for i in missing if not (original / f"{i}.tif").exists()]
        out["num_videos"] += len(missing) < length
    out["num_frames"] = len(sizes)
    return out


def _check_mask(mask: Path, size: tuple[int, int], errors: list[dict[str, str]]) -> bool:
    """True when ``mask`` exists, decodes and has the frame's ``size`` (W, H)."""
    if not mask.is_file():
        errors.append({"path": str(mask), "reason": "mask missing for an existing frame"})
        return False
    try:
        mask_size = image_size(mask)
    except OSError as exc:
        errors.append({"path": str(mask), "reason": f"unreadable mask ({exc})"})
        return False
    if mask_size != size:
        errors.append({"path": str(mask), "reason": f"mask size {mask_size[0]}x{mask_size[1]} "
                       f"(WxH) differs from its frame's {size[0]}x{size[1]}"})
        return False
    return True


def inspect_kumc(root: Path) -> dict[str, Any]:
    """Every frame image of every ``{split}2019`` folder and its VOC annotation."""
    out = _summary("kumc", root)
    labels: Counter[str] = Counter()
    negatives = 0
    for split in KUMC_SPLITS:
        base = root / f"{split}2019"
        if not (base / "Image").is_dir():
            continue
        folders = sorted((p for p in (base / "Image").iterdir() if p.is_dir()), key=natural_key)
        for folder in progress(folders, desc=f"inspect {split}2019", unit="video"):
            readable = 0
            for image in sorted(folder.iterdir(), key=natural_key):
                if image.suffix.lower() not in IMAGE_SUFFIXES:
                    out["errors"].append({"path": str(image), "reason": "not a frame image"})
                    continue
                try:
                    size = image_size(image)
                except OSError as exc:
                    out["errors"].append({"path": str(image), "reason": f"unreadable ({exc})"})
                    continue
                readable += 1
                xml = base / "Annotation" / folder.name / f"{image.stem}.xml"
                frame = read_frame(image, xml, out["errors"], image_size=size)
                if frame is not None:
                    labels.update(CLASS_NAMES[int(c)] for c in frame.labels)
                    negatives += len(frame.labels) == 0
            out["num_videos"] += readable > 0
            out["num_frames"] += readable
        out["errors"] += _orphan_annotations(base)
    out.update(label_counts=dict(sorted(labels.items())), num_boxes=sum(labels.values()),
               negative_frames=negatives)
    return out


def _orphan_annotations(base: Path) -> list[dict[str, str]]:
    """Errors for XML files under ``base/Annotation`` whose frame image does not exist."""
    errors = []
    for xml in sorted((base / "Annotation").glob("*/*.xml")):
        folder = base / "Image" / xml.parent.name
        if not any((folder / f"{xml.stem}{s}").exists() for s in IMAGE_SUFFIXES):
            errors.append({"path": str(xml), "reason": "annotation without a frame image"})
    return errors


INSPECTORS = {"videos": inspect_videos, "polypdiag": inspect_polypdiag, "cvc": inspect_cvc,
              "kumc": inspect_kumc}


def check_layout(root: Path, fmt: str) -> None:
    """Raise ``ValueError`` when ``root`` does not have the layout of ``fmt``."""
    needs = {"polypdiag": [root / "splits", root / "videos"], "cvc": [image_dirs(root)[0]],
             "kumc": [root / f"{s}2019" / "Image" for s in KUMC_SPLITS], "videos": [root]}[fmt]
    present = [p.is_dir() for p in needs]
    if (fmt == "kumc" and not any(present)) or (fmt != "kumc" and not all(present)):
        missing = ", ".join(str(p) for p, ok in zip(needs, present, strict=True) if not ok)
        raise ValueError(f"{root}: not a {fmt} dataset (missing {missing})")


def phase_layout(root: Path) -> str | None:
    """The phase layout of ``root`` (``endofm.data.phase``), or ``None``."""
    from endofm.data.phase.datasets import detect_layout

    try:
        return detect_layout(root)
    except ValueError:
        return None


def inspect_phase(root: Path, fmt: str) -> dict[str, Any]:
    """A phase dataset (Cholec80, AutoLaparo, segments CSV): phases per video, their
    durations, gaps/overlaps and other bad annotations as errors
    (:func:`endofm.data.phase.inspect.inspect_phase_dataset`)."""
    from endofm.data.phase.inspect import inspect_phase_dataset

    return inspect_phase_dataset(root, fmt)


def inspect_dataset(root: str | Path, fmt: str = "auto",
                    options: FormatOptions | None = None) -> dict[str, Any]:
    """Summary of the dataset at ``root`` (see the module docstring for every count).

    ``fmt`` is ``auto`` (detected from the layout) or one of :data:`FORMATS`; ``options``: the
    own formats' reader settings (classes file, mask suffix, ignored value). Raises
    ``FileNotFoundError``/``ValueError`` when ``root`` is not a dataset of that format; broken
    items inside a dataset are listed in ``errors`` instead.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: dataset not found")
    if fmt == "auto" and is_manifest(root):
        fmt = "manifest"
    named = options is not None and (options.image_folder or options.mask_folder)
    if fmt == "auto" and is_voc(root) and not named:
        fmt = "voc"
    if fmt == "auto" and (is_tree_layout(root) or named):
        fmt = "image_masks"
    if fmt in LABELLED:
        return inspect_classification(root, fmt, _summary(fmt, root), options)
    if fmt == "image_masks":
        return inspect_masks(root, _summary(fmt, root), options or FormatOptions())
    if fmt == "voc":
        return inspect_boxes(root, "voc", _summary("voc", root), options or FormatOptions())
    if fmt == "coco" or (fmt == "auto" and root.suffix.lower() == ".json"):
        return inspect_boxes(root, "coco", _summary("coco", root), options or FormatOptions())
    if fmt in PHASE_FORMATS or (fmt == "auto" and phase_layout(root)):
        return inspect_phase(root, fmt)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset folder not found")
    if fmt == "auto":
        fmt = detect_format(root)
    if fmt not in INSPECTORS:
        raise ValueError(f"unknown format {fmt!r}; choose auto or one of {FORMATS}")
    check_layout(root, fmt)
    return INSPECTORS[fmt](root)
