"""Is it learning? A k-NN probe of the teacher backbone on a labelled PolypDiag-layout set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score
from torch import nn

from endofm.data import read_polypdiag
from endofm.data.clips import VideoClipsConfig, test_views
from endofm.utils.device import autocast


@torch.no_grad()
def embed_videos(backbone: nn.Module, root: Path, split: str, cfg: VideoClipsConfig,
                 device: torch.device, precision: str) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised clip embeddings ``[N, D]`` and labels ``[N]`` of a split."""
    items = read_polypdiag(root, split)
    feats = []
    for item in items:
        with autocast(device, precision):
            feats.append(backbone(test_views(item, cfg).to(device)).float().mean(0))
    emb = F.normalize(torch.stack(feats), dim=-1).cpu().numpy()
    return emb, np.array([it.label for it in items])


def knn_predict(train: np.ndarray, labels: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    """Majority vote of the ``k`` nearest (cosine) training embeddings for each query."""
    k = min(k, len(train))
    nearest = np.argsort(-(query @ train.T), axis=1)[:, :k]
    votes = labels[nearest]
    return np.array([np.bincount(v).argmax() for v in votes])


def knn_probe(backbone: nn.Module, root: str | Path, img_size: int, num_frames: int,
              sampling_rate: int, k: int, device: torch.device,
              precision: str) -> dict[str, float]:
    """k-NN accuracy and F1 (class 1) on ``val`` with ``train`` as the memory bank."""
    cfg = VideoClipsConfig(num_frames=num_frames, sampling_rate=sampling_rate,
                                   crop_size=img_size, test_short_side=img_size)
    was_training = backbone.training
    backbone.eval()
    train, y_train = embed_videos(backbone, Path(root), "train", cfg, device, precision)
    val, y_val = embed_videos(backbone, Path(root), "val", cfg, device, precision)
    backbone.train(was_training)
    pred = knn_predict(train, y_train, val, k)
    return {"monitor/knn_accuracy": float((pred == y_val).mean()),
            "monitor/knn_f1": float(f1_score(y_val, pred, zero_division=0))}
