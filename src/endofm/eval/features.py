"""Clip embeddings of labelled videos for frozen-feature probes, cached on disk.

A video's feature is the backbone's normalised CLS embedding averaged over its test views
(``data.test_clips`` × ``data.test_crops``, as classification evaluates), computed on the one
windowed runner (:mod:`endofm.runner`): each test clip is a window, decoded with its views.
The cache key hashes the weights' identity, the data settings and every video's path, size and
modification time, so a cached file is reused only for exactly the same inputs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from endofm.data import VideoError, VideoItem, VideoSource, open_video
from endofm.data.clips import TestProtocol, VideoClipsConfig
from endofm.data.sampling import eval_clips, release_test_clip
from endofm.data.transforms import (
    crop,
    normalize_batch,
    release_crop_box,
    short_side_resize,
    to_clip,
    uniform_crop_boxes,
)
from endofm.runner import ClipList, RunnerSettings, VideoJob, WindowRunner
from endofm.utils.io import atomic_write

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TestViews:
    """The runner's frame maker for test clips: each window → its views uint8
    ``[V, T, 3, S, S]`` (``data.test_protocol``: centred: ``test_crops`` crops of the clip at
    short side ``test_short_side``; release: the left/top crop at short side ``crop_size``)."""

    cfg: VideoClipsConfig

    def apply_many(self, source: VideoSource, windows: Sequence[Sequence[int]]) -> list[Tensor]:
        return [self.views(to_clip(source.read(list(w)))) for w in windows]

    def views(self, clip: Tensor) -> Tensor:
        cfg = self.cfg
        if cfg.test_protocol == TestProtocol.release:
            clip = short_side_resize(clip, cfg.crop_size)
            return crop(clip, release_crop_box(*clip.shape[-2:], cfg.crop_size))[None]
        clip = short_side_resize(clip, cfg.test_short_side)
        boxes = uniform_crop_boxes(*clip.shape[-2:], cfg.crop_size, cfg.test_crops)
        return torch.stack([crop(clip, box) for box in boxes])

    def clips(self, source: VideoSource) -> np.ndarray:
        """The test clips' frame indices ``[n, T]``."""
        cfg = self.cfg
        if cfg.test_protocol == TestProtocol.release:
            return release_test_clip(source.num_frames, source.fps, cfg.num_frames,
                                     cfg.frame_step, cfg.target_fps)[None]
        return eval_clips(source.num_frames, source.fps, cfg.num_frames, cfg.frame_step,
                          cfg.test_clips, cfg.target_fps)


class ViewEmbeddings:
    """A :class:`endofm.runner.WindowModel`: a window's views → their CLS embeddings
    (``backbone``: the module, or the runner's call of it, :meth:`WindowRunner.model_call`)."""

    def __init__(self, backbone: Callable[[Tensor], Tensor], cfg: VideoClipsConfig) -> None:
        self.backbone, self.cfg, self.frames = backbone, cfg, TestViews(cfg)

    def prepare(self, clips: Tensor) -> Tensor:
        """uint8 ``[b, V, T, 3, S, S]`` → normalised ``[b*V, 3, T, S, S]``."""
        return normalize_batch(clips.flatten(0, 1), self.cfg.mean, self.cfg.std)

    def model_fn(self, x: Tensor) -> Tensor:
        return self.backbone(x)

    def finish(self, raw: Tensor, clips: Tensor) -> np.ndarray:
        """``[b*V, D]`` → float32 ``[b, V, D]``."""
        return raw.float().reshape(*clips.shape[:2], -1).cpu().numpy()


@torch.no_grad()
def embed_videos(backbone: nn.Module, items: Sequence[VideoItem], cfg: VideoClipsConfig,
                 device: torch.device, precision: str = "fp32",
                 num_workers: int = 0) -> np.ndarray:
    """``[N, D]`` float32: each video's clip embedding averaged over its test views. A video
    that cannot be decoded raises :class:`endofm.data.VideoError` naming it."""
    was_training = backbone.training
    runner = WindowRunner(RunnerSettings(str(device), precision, num_workers=num_workers))
    model = ViewEmbeddings(runner.model_call(runner.place(backbone)), cfg)  # bf16 CPU: a copy
    jobs = []
    for item in items:
        source = open_video(item.path, cfg.folder_fps)
        jobs.append(VideoJob(str(item.path), source, ClipList(model.frames.clips(source),
                                                              source.fps)))
    sums: list[list[np.ndarray]] = [[] for _ in jobs]
    for out in runner.run(model, jobs):
        if out.errors:
            window, reason = out.errors[0]
            raise VideoError(jobs[out.job].key, f"test clip {window.index}: {reason}")
        sums[out.job].append(out.outputs.reshape(-1, out.outputs.shape[-1]))
    backbone.train(was_training)
    if not jobs:
        return np.zeros((0, backbone.embed_dim), "float32")
    return np.stack([np.concatenate(views).mean(0) for views in sums]).astype(np.float32)


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
    cache file (damaged, truncated by hand) is recomputed and replaced, with a warning naming it."""
    if cache_dir is None:
        return compute(), False
    path = Path(cache_dir) / f"{key}.npy"
    if path.is_file():
        try:
            return np.load(path, allow_pickle=False), True
        except (OSError, ValueError, EOFError) as exc:
            logger.warning("%s: unreadable feature cache file (%s); computing it again", path,
                           exc)
    feats = compute()

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.save(f, feats)

    atomic_write(path, write)
    return feats, False
