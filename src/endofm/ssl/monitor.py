"""Is it learning? The probe's weighted k-NN (``endofm.eval``) on a labelled PolypDiag-layout
set, run on the teacher backbone during pre-training."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from endofm.data import read_polypdiag
from endofm.data.clips import VideoClipsConfig
from endofm.eval.features import embed_videos
from endofm.eval.knn import knn_classify
from endofm.eval.metrics import classification_metrics


def knn_probe(backbone: nn.Module, root: str | Path, img_size: int, num_frames: int,
              frame_step: int, k: int, device: torch.device,
              precision: str) -> dict[str, float]:
    """k-NN accuracy and F1 (class 1) on ``val`` with ``train`` as the memory bank."""
    cfg = VideoClipsConfig(num_frames=num_frames, frame_step=frame_step,
                           crop_size=img_size, test_short_side=img_size)
    train_items, val_items = read_polypdiag(root, "train"), read_polypdiag(root, "val")
    train = embed_videos(backbone, train_items, cfg, device, precision)
    val = embed_videos(backbone, val_items, cfg, device, precision)
    labels = [it.label for it in train_items]
    probs = knn_classify(train, labels, val, k, num_classes=max(2, max(labels) + 1))
    metrics = classification_metrics([it.label for it in val_items], probs)
    return {"monitor/knn_accuracy": metrics["accuracy"], "monitor/knn_f1": metrics["f1"]}
