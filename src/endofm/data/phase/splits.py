"""The standard splits by video number, and the same rule on fewer videos.

Cholec80: videos 1–40 train (33–40 the optional validation part), 41–80 test. AutoLaparo:
1–10 train, 11–14 validation, 15–21 test. When the videos present leave a standard part empty
(a subset of the dataset), the same proportions are applied to the videos there in number
order (Cholec80: the first half trains, the last fifth of it validates; AutoLaparo: 10/21 and
4/21), and the rule used is recorded in :class:`Split`. ``segments`` data: a ``split`` column
when the CSV has one, else the Cholec80 proportions over the videos in name order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from endofm.data.phase.datasets import PhaseVideo

# layout → (train numbers, validation numbers (inside train), test numbers)
STANDARD = {"cholec80": (range(1, 41), range(33, 41), range(41, 81)),
            "autolaparo": (range(1, 15), range(11, 15), range(15, 22))}
SPLITS = ("train", "val", "train_no_val", "test", "all")


@dataclass(frozen=True)
class Split:
    """The videos of each part by name and the rule that made them."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    rule: str

    def names(self, part: str) -> tuple[str, ...]:
        """``train`` (validation included), ``val``, ``train_no_val``, ``test`` or ``all``."""
        if part == "train":
            return self.train
        if part == "val":
            return self.val
        if part == "train_no_val":
            return tuple(n for n in self.train if n not in self.val)
        if part == "test":
            return self.test
        if part == "all":
            return (*self.train, *self.test)
        raise ValueError(f"unknown split {part!r}; choose one of {SPLITS}")


def by_number(videos: Sequence[PhaseVideo], layout: str) -> Split | None:
    """The standard split, or ``None`` when it leaves train or test empty."""
    train_n, val_n, test_n = STANDARD[layout]
    train = tuple(v.name for v in videos if v.number in train_n)
    test = tuple(v.name for v in videos if v.number in test_n)
    if not train or not test:
        return None
    val = tuple(v.name for v in videos if v.number in val_n)
    return Split(train, val, test, f"{layout} standard split by video number "
                                   f"(train {train_n.start}–{train_n.stop - 1}, validation "
                                   f"{val_n.start}–{val_n.stop - 1}, test {test_n.start}–"
                                   f"{test_n.stop - 1})")


def proportional(names: Sequence[str], layout: str) -> Split:
    """The standard proportions over ``names`` (in order): train first, then test."""
    train_n, val_n, test_n = STANDARD.get(layout, STANDARD["cholec80"])
    total = test_n.stop - 1
    n = len(names)
    if n < 2:
        raise ValueError(f"{n} annotated video(s): a train/test split needs at least 2")
    n_train = min(n - 1, max(1, round(n * len(train_n) / total)))
    n_val = min(n_train - 1, math.floor(n_train * len(val_n) / len(train_n) + 0.5))
    train = tuple(names[:n_train])
    return Split(train, train[n_train - n_val:], tuple(names[n_train:]),
                 f"the {layout} proportions over the {n} videos present in order: first "
                 f"{n_train} train (last {n_val} of them validation), last {n - n_train} test")


def split_videos(videos: Sequence[PhaseVideo], layout: str) -> Split:
    """The split of ``videos`` (module docstring)."""
    if layout in STANDARD and all(v.number is not None for v in videos):
        found = by_number(videos, layout)
        if found is not None:
            return found
        ordered = [v.name for v in sorted(videos, key=lambda v: v.number)]
        return proportional(ordered, layout)
    if any(v.split for v in videos):
        named = {part: tuple(v.name for v in videos if v.split == part)
                 for part in ("train", "val", "test")}
        if not named["test"]:
            raise ValueError("the segments' split column names no test video")
        return Split((*named["train"], *named["val"]), named["val"], named["test"],
                     "the split column of the segments file")
    return proportional(sorted(v.name for v in videos), layout)
