"""Clip embeddings of labelled videos for frozen-feature probes, cached on disk.

A video's feature is the backbone's normalised CLS embedding averaged over its test views
(``data.test_clips`` × ``data.test_crops``, as classification evaluates). The cache key hashes
the weights' identity, the data settings and every video's path, size and modification time,
so a cached file is reused only for exactly the same inputs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from endofm.data import VideoItem
from endofm.data.clips import VideoClipsConfig, test_views
from endofm.utils.device import autocast
from endofm.utils.io import atomic_write
from endofm.utils.progress import note


@torch.no_grad()
def embed_videos(backbone: nn.Module, items: Sequence[VideoItem], cfg: VideoClipsConfig,
                 device: torch.device, precision: str = "fp32") -> np.ndarray:
    """``[N, D]`` float32: each video's clip embedding averaged over its test views."""
    was_training = backbone.training
    backbone.eval()
    feats = []
    for item in items:
        with autocast(device, precision):
            feats.append(backbone(test_views(item, cfg).to(device)).float().mean(0).cpu())
    backbone.train(was_training)
    return torch.stack(feats).numpy() if feats else np.zeros((0, backbone.embed_dim), "float32")


def file_identity(path: str | Path) -> list:
    """``[resolved path, size, mtime_ns]`` of a file, or of every file of a directory."""
    path = Path(path).resolve()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in files]


def cache_key(weights: Any, settings: dict, items: Sequence[VideoItem]) -> str:
    """A hex digest of the weights' identity, the settings and the videos (paths, sizes,
    modification times, in order). Labels are not part of it: features do not depend on them,
    so the same videos relabelled (another task on them) reuse the cached features."""
    videos = [file_identity(it.path)[0] for it in items]
    blob = json.dumps({"weights": weights, "settings": settings, "videos": videos},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def cached(cache_dir: str | Path | None, key: str,
           compute: Callable[[], np.ndarray]) -> tuple[np.ndarray, bool]:
    """(features, whether they came from the cache) — ``compute()`` results are written to
    ``cache_dir/<key>.npy`` atomically; without ``cache_dir`` nothing is cached. An unreadable
    cache file (damaged, truncated by hand) is recomputed and replaced, with a note naming it."""
    if cache_dir is None:
        return compute(), False
    path = Path(cache_dir) / f"{key}.npy"
    if path.is_file():
        try:
            return np.load(path, allow_pickle=False), True
        except (OSError, ValueError, EOFError) as exc:
            note(f"{path}: unreadable feature cache file ({exc}); computing it again")
    feats = compute()

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.save(f, feats)

    atomic_write(path, write)
    return feats, False
