"""Train / val / test splits of a labelled dataset, always by video.

Where the data names its splits (a ``split`` column, ``DIR/{train,val,test}/`` folders,
separate annotation files, or ``splits/{train,val,test}.txt`` listing videos or stems, or a
Pascal VOC / CVAT export's ``ImageSets/Segmentation/`` or ``ImageSets/Main/`` ones), they are
used as given. Otherwise the test split is carved from the training videos with
``protocol.test_fraction`` (seeded by ``protocol.val_seed``); the validation carve-out of the
engine follows the same rule. Every frame or clip of one video lands on one side only.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from endofm.data.datasets.records import DatasetError
from endofm.utils.text import short_list

SPLITS = ("train", "val", "test")
SPLIT_FILE_FOLDERS = ("splits", "ImageSets/Segmentation", "ImageSets/Main")  # VOC, CVAT
SPLIT_ALIASES = {"training": "train", "valid": "val", "validation": "val", "testing": "test"}
T = TypeVar("T")
logger = logging.getLogger(__name__)


def split_name(raw: str, where: str) -> str:
    """``train``/``val``/``test`` (or a common spelling of one); anything else is an error."""
    name = SPLIT_ALIASES.get(raw.strip().lower(), raw.strip().lower())
    if name not in SPLITS:
        raise DatasetError(where, f"unknown split {raw!r} (want one of {', '.join(SPLITS)})")
    return name


def carve(keys: Sequence[str], fraction: float, seed: int,
          labels: Sequence[int] | None = None) -> set[str]:
    """The ``round(fraction · n)`` keys (at least one, leaving at least one) set aside by a
    seeded shuffle; with ``labels`` (one per key) stratified: each class gives its share."""
    if len(keys) < 2:
        raise ValueError(f"cannot carve a split from {len(keys)} video(s); give the split in "
                         "the data (split column, folders or splits/*.txt)")
    order = list(range(len(keys)))
    random.Random(seed).shuffle(order)
    if labels is not None:
        rank: dict[int, float] = {}
        for label in sorted(set(labels)):
            members = [i for i in order if labels[i] == label]
            rank |= {i: k / len(members) for k, i in enumerate(members)}
        order = sorted(order, key=lambda i: rank[i])
    count = min(len(keys) - 1, max(1, round(fraction * len(keys))))
    return {keys[i] for i in order[:count]}


def carve_items(items: Sequence[T], fraction: float, seed: int, group: Callable[[T], str],
                label: Callable[[T], int] | None = None) -> tuple[list[T], list[T]]:
    """(kept, carved) items: whole groups (videos) are carved, stratified by the label of each
    group's first item when ``label`` is given."""
    first: dict[str, T] = {}
    for item in items:
        first.setdefault(group(item), item)
    keys = list(first)
    labels = [label(first[k]) for k in keys] if label is not None else None
    chosen = carve(keys, fraction, seed, labels)
    return ([it for it in items if group(it) not in chosen],
            [it for it in items if group(it) in chosen])


def matches(line: str, key: str) -> bool:
    """A ``splits/*.txt`` line names a video by its key, file or folder name, or stem."""
    path = Path(key)
    return line in (key, path.name, path.stem)


def read_split_files(root: Path) -> tuple[Path, dict[str, list[str]]] | None:
    """``(folder, {split: lines})`` of the first of ``root``'s :data:`SPLIT_FILE_FOLDERS`
    holding a ``train``, ``val`` or ``test.txt`` (``None`` without any; a CVAT export's lone
    ``default.txt`` names no split). Line numbers count blank lines."""
    for folder in (root / f for f in SPLIT_FILE_FOLDERS):
        files = {s: folder / f"{s}.txt" for s in SPLITS if (folder / f"{s}.txt").is_file()}
        if files:
            return folder, {s: [ln.strip() for ln in f.read_text(encoding="utf-8").splitlines()]
                            for s, f in files.items()}
    return None


def tags_from_files(keys: Sequence[str], listing: dict[str, list[str]], folder: Path
                    ) -> dict[str, str]:
    """``{key: split}`` from the split files in ``folder``; a line that names no video, or a
    video listed in two splits, is an error naming the file and line."""
    tags: dict[str, str] = {}
    for split, lines in listing.items():
        for number, line in enumerate(lines, start=1):
            if not line:
                continue
            hits = [k for k in keys if matches(line, k)]
            where = f"{folder / f'{split}.txt'}:{number}"
            if not hits:
                raise DatasetError(where, f"{line!r} names no video or image of the dataset")
            for key in hits:
                if tags.get(key, split) != split:
                    raise DatasetError(where, f"{key} is listed in both {tags[key]} and {split}")
                tags[key] = split
    return tags


@dataclass
class SplitPlan(Generic[T]):
    """Items with the split each was given (``None``: not given) and their video."""

    items: list[T]
    tags: list[str | None]
    group: Callable[[T], str]

    def given(self) -> set[str]:
        return {t for t in self.tags if t is not None}

    def select(self, split: str, test_fraction: float, seed: int,
               label: Callable[[T], int] | None = None) -> list[T]:
        """The items of ``split``. ``val`` is only what the data gives (possibly none); without
        a given test split, ``test`` is carved by video from the training items and ``train``
        is what is left."""
        split = split_name(split, "split")
        given = self.given()
        if split == "val" or (split == "test" and "test" in given):
            return [it for it, t in zip(self.items, self.tags, strict=True) if t == split]
        pool = [it for it, t in zip(self.items, self.tags, strict=True) if t in (None, "train")]
        if "test" in given:
            return pool
        if test_fraction <= 0:
            raise ValueError("the data gives no test split and protocol.test_fraction is 0: "
                             "give one (split column, folders or splits/test.txt) or set "
                             "protocol.test_fraction")
        train, test = carve_items(pool, test_fraction, seed, self.group, label)
        return test if split == "test" else train


def plan_from_files(items: list[T], group: Callable[[T], str], root: Path,
                    tags: list[str | None] | None = None) -> SplitPlan[T]:
    """A plan with the data's own tags, else the split files' (:func:`read_split_files`;
    videos they do not list are left out, counted in a log line), else none."""
    if tags is not None and any(t is not None for t in tags):
        return SplitPlan(items, tags, group)
    found = read_split_files(root) if root.is_dir() else None
    if found is None:
        return SplitPlan(items, [None] * len(items), group)
    folder, listing = found
    by_key = tags_from_files(sorted({group(it) for it in items}), listing, folder)
    unlisted = sorted({group(it) for it in items} - set(by_key))
    if unlisted:
        logger.warning("%s: %d video(s) in no split file are left out (%s)", folder,
                       len(unlisted), short_list(unlisted))
    kept = [it for it in items if group(it) in by_key]
    return SplitPlan(kept, [by_key[group(it)] for it in kept], group)
