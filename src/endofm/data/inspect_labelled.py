"""``endofm data inspect`` for the own-data formats (:mod:`endofm.data.formats`).

``image_masks`` (:func:`inspect_masks`): per split the sequences and frames, frames per
sequence, frames holding each class (``label_counts``), and ``mask_values``: the values
declared, the values seen in the (lossless) masks and the undeclared ones with the files
holding them; a frame without a mask, a mask without a frame, sizes that differ and files that
do not decode are errors.

Besides the common counts (``num_videos``, ``num_frames``, ``label_counts`` per class name,
``errors``), a labelled dataset's summary has ``classes`` (``[{"index", "id", "name"}]``),
``splits`` (per split the data gives — ``train``/``val``/``test``, or ``unassigned`` for items
that the training run carves by video — the videos and the label counts), ``frames_per_video``
(``min``, ``median``, ``max`` decoded frames), ``num_items`` (rows: several clips of one
video count once each) and ``multi_label``. Every row, file or
annotation left out is one entry of ``errors`` naming it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from endofm.data.datasets.records import DatasetError, VideoItem
from endofm.data.formats import FormatOptions, LabelledData, MaskCodec, read_format
from endofm.data.formats.masks import IGNORE, LOSSY_SUFFIXES
from endofm.data.video import VideoError, open_video
from endofm.utils.progress import progress

UNASSIGNED = "unassigned"


def frame_stats(counts: list[int]) -> dict[str, float]:
    if not counts:
        return {"min": 0, "median": 0, "max": 0}
    return {"min": int(min(counts)), "median": float(np.median(counts)), "max": int(max(counts))}


def item_labels(item: VideoItem, data: LabelledData) -> list[str]:
    indices = item.labels if data.multi_label else (item.label,)
    return [data.classes.names[i] for i in indices or ()]


def read_noted(fmt: str, root: Path, options: FormatOptions,
               errors: list[dict[str, str]]) -> LabelledData | None:
    """The dataset at ``root`` read as format ``fmt`` (problems with single items appended to
    ``errors``); ``None`` after appending the problem that stops the whole dataset."""
    try:
        return read_format(fmt, root, options, errors)
    except DatasetError as exc:
        errors.append({"path": exc.path, "reason": exc.reason})
        return None


def planned(data: LabelledData, unit: str) -> Iterator[tuple[Any, str | None]]:
    """``(item, split tag)`` of every item of ``data``'s plan, with a progress bar."""
    pairs = list(zip(data.plan.items, data.plan.tags, strict=True))
    yield from progress(pairs, desc="inspect", unit=unit)


def decoded_frames(path: Path, errors: list[dict[str, str]]) -> int | None:
    """Frames of a video, all decoded; ``None`` after appending the error."""
    try:
        return open_video(path).verify()
    except VideoError as exc:
        errors.append({"path": exc.path, "reason": exc.reason})
    except OSError as exc:
        errors.append({"path": str(path), "reason": f"unreadable ({exc})"})
    return None


def inspect_classification(root: Path, fmt: str, summary: dict[str, Any],
                           options: FormatOptions | None = None) -> dict[str, Any]:
    """Counts of a ``manifest`` / ``folders`` dataset: every video decoded once."""
    errors: list[dict[str, str]] = summary["errors"]
    data = read_noted(fmt, root, options or FormatOptions(), errors)
    if data is None:
        return summary
    frames: dict[Path, int | None] = {}
    labels: Counter[str] = Counter()
    splits: dict[str, dict[str, Any]] = {}
    for item, tag in planned(data, "video"):
        if item.path not in frames:
            frames[item.path] = decoded_frames(item.path, errors)
        if frames[item.path] is None:
            continue
        names = item_labels(item, data)
        labels.update(names)
        part = splits.setdefault(tag or UNASSIGNED,
                                 {"videos": set(), "items": 0, "label_counts": Counter()})
        part["videos"].add(item.path)
        part["items"] += 1
        part["label_counts"].update(names)
    good = [n for n in frames.values() if n is not None]
    summary.update(
        num_videos=len(good), num_frames=sum(good),
        label_counts={n: labels[n] for n in data.classes.names},
        classes=data.classes.to_json(), multi_label=data.multi_label,
        num_items=sum(p["items"] for p in splits.values()),
        frames_per_video=frame_stats(good),
        splits={s: {"num_videos": len(p["videos"]), "num_items": p["items"],
                    "label_counts": {n: p["label_counts"][n] for n in data.classes.names}}
                for s, p in sorted(splits.items())})
    return summary


def image_size(path: Path) -> tuple[int, int]:
    """``(W, H)`` after decoding the whole image (``OSError`` if it does not)."""
    with Image.open(path) as image:
        image.load()
        return image.size


# a lossy mask with more than this share of its pixels far from every declared value is listed
FAR_SHARE = 0.02


def check_pair(frame: Path, mask: Path, codec: MaskCodec, seen: dict, errors: list,
               far: list) -> set[int] | None:
    """The class indices present in a frame's mask, after checking that both decode, that
    their sizes agree and that every mask value is declared (lossy masks: that at most
    :data:`FAR_SHARE` of the pixels are far from every declared value, else the mask goes
    into ``far``); ``None`` after reporting."""
    try:
        size = image_size(frame)
    except OSError as exc:
        errors.append({"path": str(frame), "reason": f"unreadable frame ({exc})"})
        return None
    lossless = mask.suffix.lower() not in LOSSY_SUFFIXES
    try:
        if lossless:
            for value in codec.values_seen(mask):
                seen.setdefault(value, []).append(str(mask))
        else:
            share, value = codec.far_from_declared(mask)
            if share > FAR_SHARE:
                far.append({"path": str(mask), "share": round(share, 4), "value": value})
        decoded = codec.decode(mask)
    except DatasetError as exc:
        errors.append({"path": exc.path, "reason": exc.reason})
        return None
    if decoded.shape[::-1] != size:
        errors.append({"path": str(mask), "reason": f"mask size {decoded.shape[1]}x"
                       f"{decoded.shape[0]} (WxH) differs from its frame {frame} "
                       f"({size[0]}x{size[1]})"})
        return None
    return {int(c) for c in np.unique(decoded) if c != IGNORE}


def inspect_masks(root: Path, summary: dict[str, Any], options: FormatOptions) -> dict[str, Any]:
    """Counts of an ``image_masks`` dataset: every frame and mask decoded once.

    ``label_counts``: frames whose mask holds each class; ``mask_values``: ``declared``
    (``{name: value}``), ``seen`` (``{value: masks holding it}``, lossless masks) and
    ``undeclared`` (``{value: [up to 5 masks]}``), ``lossy_far_from_declared`` (JPEG masks
    with more than :data:`FAR_SHARE` of their pixels far from every declared value: ``count``
    and up to 5 ``{path, share, value}``, the commonest far value)."""
    errors: list[dict[str, str]] = summary["errors"]
    data = read_noted("image_masks", root, options, errors)
    if data is None:
        return summary
    codec: MaskCodec = data.masks
    names = data.classes.names
    seen: dict[Any, list[str]] = {}
    far: list[dict[str, Any]] = []
    labels: Counter[str] = Counter()
    splits: dict[str, Counter] = {}
    lengths = []
    for seq, tag in planned(data, "sequence"):
        good = 0
        for frame, mask in zip(seq.frames, seq.masks, strict=True):
            present = check_pair(frame, mask, codec, seen, errors, far)
            if present is not None:
                good += 1
                labels.update(names[c] for c in present)
        lengths.append(good)
        part = splits.setdefault(tag or UNASSIGNED, Counter())
        part.update(num_videos=int(good > 0), num_frames=good)
    declared = set(codec.classes.values or ()) if codec.encoding != "binary" else None
    summary.update(
        num_videos=sum(n > 0 for n in lengths), num_frames=sum(lengths),
        num_masks=sum(lengths), label_counts={n: labels[n] for n in names},
        classes=data.classes.to_json(), frames_per_video=frame_stats(lengths),
        splits={s: dict(c) for s, c in sorted(splits.items())},
        mask_values={
            "encoding": codec.encoding,
            "declared": {n: list(v) if isinstance(v, tuple) else v
                         for n, v in zip(names, codec.classes.values or (), strict=True)},
            "seen": {str(v): len(f) for v, f in sorted(seen.items())},
            "undeclared": {} if declared is None else
            {str(v): f[:5] for v, f in sorted(seen.items())
             if v not in declared and v != codec.ignore_value},
            "lossy_far_from_declared": {"count": len(far), "masks": far[:5]}})
    return summary


def inspect_boxes(root: Path, fmt: str, summary: dict[str, Any], options: FormatOptions
                  ) -> dict[str, Any]:
    """Counts of a ``coco`` or ``voc`` dataset (``fmt``): every listed image decoded once.

    ``label_counts``: boxes per category name (``crowd_regions`` apart); ``splits``: per split
    the videos, frames, annotated frames and boxes per category; ``negative_frames``: annotated
    frames without a box; ``unannotated_frames``: context frames (``data.unannotated=skip``).
    Annotations whose image is missing, boxes outside their image, unknown categories and
    image files that are not found or do not decode are errors."""
    errors: list[dict[str, str]] = summary["errors"]
    data = read_noted(fmt, root, options, errors)
    if data is None:
        return summary
    names = data.classes.names
    boxes: Counter[str] = Counter()
    splits: dict[str, dict[str, Any]] = {}
    lengths, negatives, context, crowd = [], 0, 0, 0
    for video, tag in planned(data, "video"):
        readable = 0
        part = splits.setdefault(tag or UNASSIGNED, {"num_videos": 0, "num_frames": 0,
                                                     "annotated_frames": 0,
                                                     "label_counts": Counter()})
        for frame in video.frames:
            try:
                image_size(frame.image)
            except OSError as exc:
                errors.append({"path": str(frame.image), "reason": f"unreadable ({exc})"})
                continue
            readable += 1
            counted = Counter(names[int(c) - 1] for c in frame.labels)
            boxes.update(counted)
            part["label_counts"].update(counted)
            part["annotated_frames"] += frame.annotated
            negatives += frame.annotated and not len(frame.labels)
            context += not frame.annotated
            crowd += len(frame.crowd)
        lengths.append(readable)
        part["num_videos"] += readable > 0
        part["num_frames"] += readable
    for part in splits.values():
        part["label_counts"] = {n: part["label_counts"][n] for n in names}
    summary.update(
        num_videos=sum(n > 0 for n in lengths), num_frames=sum(lengths),
        num_boxes=sum(boxes.values()), label_counts={n: boxes[n] for n in names},
        classes=data.classes.to_json(), frames_per_video=frame_stats(lengths),
        splits=dict(sorted(splits.items())), negative_frames=negatives,
        unannotated_frames=context, crowd_regions=crowd)
    return summary
