"""Pre-training batches: views per clip, exact per-epoch sample order, reported skips."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from endofm.data.pretrain_dataset import Skip
from endofm.data.views import collate_views


def merge_skips(lists: Iterable[list[dict[str, str]]]) -> list[dict[str, str]]:
    """One list of ``{"path", "reason"}`` entries from several (e.g. one per rank), in first-seen
    order without repeats."""
    merged: list[dict[str, str]] = []
    for entries in lists:
        merged += [e for e in entries if e not in merged]
    return merged


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
