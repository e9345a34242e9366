"""Pre-training batches: views per clip, exact per-epoch sample order, reported skips."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Dataset

from endofm.data import PretrainClipDataset, VideoError
from endofm.data.views import collate_views


@dataclass
class Skip:
    """A sample that could not be decoded (kept so the main process can report it)."""

    path: str
    reason: str


class ReportingClips(Dataset):
    """``ds[i]`` → the views of clip ``i``, or a :class:`Skip` naming the file and problem
    (with ``on_error="skip"``; ``"raise"`` propagates the error)."""

    def __init__(self, clips: PretrainClipDataset, on_error: str) -> None:
        self.clips, self.on_error = clips, on_error

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> list[Tensor] | Skip:
        try:
            return self.clips.load(i)
        except VideoError as error:
            if self.on_error == "raise":
                raise
            return Skip(str(error.path), error.reason)


def collate(batch: list) -> tuple[list[Tensor] | None, list[Skip]]:
    """(views per view index ``[B', 3, T, S, S]`` or ``None`` if all skipped, skips)."""
    skips = [b for b in batch if isinstance(b, Skip)]
    samples = [b for b in batch if not isinstance(b, Skip)]
    return (collate_views(samples) if samples else None), skips


def epoch_order(num_items: int, epoch: int, seed: int, rank: int, world_size: int,
                weights: Tensor | None = None) -> list[int]:
    """This process's sample order for ``epoch``: a seeded permutation (or a weighted draw with
    replacement), sharded round-robin across processes and padded to equal length."""
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    if weights is None:
        order = torch.randperm(num_items, generator=gen).tolist()
    else:
        order = torch.multinomial(weights, num_items, replacement=True, generator=gen).tolist()
    per_rank = -(-num_items // world_size)
    order += order[: per_rank * world_size - num_items]
    return order[rank::world_size]
