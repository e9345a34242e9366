"""A phase dataset's videos (:class:`PhaseSplits`: the videos of a split, as both phase tasks
read them) with their cached window features: one :class:`PhaseItem` per video, labelled at
each window's centre."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from endofm.data.phase import PhaseDataset, PhaseVideo, read_phase_dataset, split_videos
from endofm.tasks.phase.config import PhaseDataConfig, Validation


class PhaseSplits:
    """The videos of a split of the phase dataset at a root (read once per root) under
    ``data`` (layout, phase names, validation rule) and ``selection`` (``protocol.selection``):
    when the dataset's own validation videos select the kept epoch (:meth:`standard_val`),
    ``train`` leaves them out."""

    def __init__(self, data: PhaseDataConfig, selection: str) -> None:
        self.data, self.selection = data, selection
        self.dataset: PhaseDataset | None = None

    def read(self, root: str | Path) -> PhaseDataset:
        """The dataset at ``root`` (its videos must exist)."""
        if self.dataset is None or self.dataset.root != Path(root):
            self.dataset = read_phase_dataset(root, self.data.layout, need_videos=True,
                                              phases=tuple(self.data.phases))
        return self.dataset

    def standard_val(self, root: str | Path) -> bool:
        """Whether the dataset's own validation videos select the kept epoch: under
        ``protocol.selection=val`` with ``data.validation=standard``, when the split has
        validation videos and training videos besides them."""
        if self.selection != "val" or self.data.validation != Validation.standard:
            return False
        dataset = self.read(root)
        split = split_videos(dataset.videos, dataset.layout)
        return bool(split.val) and bool(split.names("train_no_val"))

    def videos(self, root: str | Path, split: str) -> list[PhaseVideo]:
        """The videos of ``split``, in the dataset's order."""
        dataset = self.read(root)
        part = "train_no_val" if split == "train" and self.standard_val(root) else split
        names = set(split_videos(dataset.videos, dataset.layout).names(part))
        return [v for v in dataset.videos if v.name in names]


@dataclass
class PhaseItem:
    """One video: ``features`` float32 ``[T, D]`` (window ``k`` starts at ``k / rate`` s),
    ``labels`` int64 ``[T]`` (the phase at each window's centre), ``tools`` uint8 ``[T, K]``
    or ``None``; ``video`` the annotated video it came from."""

    video: PhaseVideo
    features: np.ndarray
    labels: np.ndarray
    tools: np.ndarray | None
    rate: float

    @property
    def name(self) -> str:
        return self.video.name


def window_centres(folder: Path) -> dict[str, np.ndarray]:
    """Each video's window centres in seconds ``[T]`` from the extraction's ``index.csv``."""
    index = folder / "index.csv"
    if not index.is_file():
        raise FileNotFoundError(f"{index}: no feature index; the features are extracted by "
                                "`endofm finetune phase` (stage 1)")
    centres: dict[str, list[float]] = {}
    with open(index, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            stem = Path(row["video"]).with_suffix("").as_posix()
            centres.setdefault(stem, []).append((float(row["start_s"]) + float(row["end_s"]))
                                                / 2)
    return {k: np.asarray(v) for k, v in centres.items()}


def load_items(videos: Sequence[PhaseVideo], folder: str | Path, rate: float,
               with_tools: bool) -> list[PhaseItem]:
    """The videos with their features from ``folder`` (``<name>.npy`` + ``index.csv``); a
    video without features is an error naming it."""
    folder = Path(folder)
    centres = window_centres(folder)
    items = []
    for video in videos:
        path = folder / f"{video.name}.npy"
        if not path.is_file() or video.name not in centres:
            raise FileNotFoundError(f"{path}: no features for {video.name} (extracted by "
                                    "`endofm finetune phase`)")
        features = np.load(path, allow_pickle=False).astype(np.float32)
        times = centres[video.name]
        if len(times) != len(features):
            raise ValueError(f"{path}: {len(features)} windows, index.csv lists {len(times)}")
        tools = video.tools.at(times) if with_tools and video.tools is not None else None
        items.append(PhaseItem(video, features, video.phases.at(times), tools, rate))
    return items


class FeatureSequences(Dataset):
    """One sample per video: ``(features [T, D], labels [T], tools [T, K] float or [T, 0])``."""

    def __init__(self, items: Sequence[PhaseItem]) -> None:
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        item = self.items[i]
        tools = (torch.from_numpy(item.tools.astype(np.float32)) if item.tools is not None
                 else torch.zeros(len(item.labels), 0))
        return torch.from_numpy(item.features), torch.from_numpy(item.labels), tools
