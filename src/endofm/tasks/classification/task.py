"""The ``classification`` task (PolypDiag): backbone CLS → linear head, full fine-tuning or a
linear probe, test-time averaging over clips × crops."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from endofm.data import VideoItem, read_polypdiag
from endofm.data.clips import test_views
from endofm.eval.metrics import classification_metrics, plot_confusion_and_roc
from endofm.models import BackboneConfig, VideoClassifier, create_backbone, load_classifier
from endofm.tasks.base import EngineConfig, Task
from endofm.tasks.classification.data import ClassificationDataConfig, TrainClips
from endofm.tasks.classification.recipe import balanced_class_weights, linear_probe_head
from endofm.utils.device import autocast
from endofm.utils.io import atomic_write
from endofm.utils.progress import progress


@dataclass
class ClassificationModelConfig:
    """The backbone (its size and frame count follow ``data.crop_size`` / ``data.num_frames``)
    and the head."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    num_classes: int = 2
    head_dropout: float = 0.0
    positive_class: int = 1  # the class F1/precision/recall/AUROC refer to (1 = abnormal)


@dataclass
class ClassificationRecipeConfig:
    """Small-data aids: ``balance="loss"`` weights the cross-entropy by inverse class frequency
    of the training items; ``lp_warm_start`` fits the head as a linear probe on the frozen
    backbone's features before fine-tuning (LP-FT)."""

    balance: str = "none"  # none | loss
    lp_warm_start: bool = False


@dataclass
class ClassificationConfig(EngineConfig):
    """The classification task's config: its sections plus the engine's."""

    model: ClassificationModelConfig = field(default_factory=ClassificationModelConfig)
    data: ClassificationDataConfig = field(default_factory=ClassificationDataConfig)
    recipe: ClassificationRecipeConfig = field(default_factory=ClassificationRecipeConfig)

    def __post_init__(self) -> None:
        self.model.backbone.bind(self.data.crop_size, self.data.num_frames,
                                 "data.crop_size/data.num_frames")


class ClassificationTask(Task):
    name = "classification"
    config_class = ClassificationConfig
    selection_metric = "f1"
    test_split = "val"  # PolypDiag's held-out split is splits/val.txt

    def build_model(self, pretrained: str | Path | None) -> nn.Module:
        m = self.cfg.model
        backbone = create_backbone(self.backbone_settings(pretrained))
        return VideoClassifier(backbone, m.num_classes, m.head_dropout)

    def read_items(self, root: str | Path, split: str) -> list[VideoItem]:
        return read_polypdiag(root, split, num_classes=self.cfg.model.num_classes)

    def train_dataset(self, items: Sequence[VideoItem]) -> Dataset:
        balance = self.cfg.recipe.balance
        if balance not in ("none", "loss"):
            raise ValueError(f"recipe.balance must be none or loss, got {balance!r}")
        if balance == "loss":
            self.class_weights = balanced_class_weights([it.label for it in items],
                                                        self.cfg.model.num_classes)
        return TrainClips(items, self.cfg.data)

    def prepare(self, model: nn.Module, items: Sequence[VideoItem], device: torch.device,
                precision: str) -> None:
        """LP-FT: the head starts as a linear probe of the frozen backbone (if enabled)."""
        if self.cfg.recipe.lp_warm_start:
            C = linear_probe_head(model, items, self.cfg.data, device, precision)
            print(f"linear-probe warm start of the head (C={C:g})")

    def loss(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        clips, labels = batch
        logits = model(clips)
        weight = getattr(self, "class_weights", None)
        return F.cross_entropy(logits, labels,
                               weight=None if weight is None else weight.to(logits.device))

    @torch.no_grad()
    def predict(self, model: nn.Module, item: VideoItem, device: torch.device,
                precision: str) -> np.ndarray:
        """Class probabilities of one video, averaged over its test views. ``[C]``."""
        views = test_views(item, self.cfg.data).to(device)
        with autocast(device, precision):
            logits = model(views).float()
        return logits.softmax(-1).mean(0).cpu().numpy()

    def evaluate(self, model: nn.Module, items: Sequence[VideoItem], device: torch.device,
                 precision: str, out_dir: Path | None = None) -> dict[str, Any]:
        probs = np.stack([self.predict(model, it, device, precision)
                          for it in progress(items, desc="evaluate", unit="video")])
        labels = np.array([it.label for it in items])
        positive = self.cfg.model.positive_class
        metrics = classification_metrics(labels, probs, positive)
        if out_dir is not None:
            write_predictions(items, probs, Path(out_dir) / "predictions.csv")
            plot_confusion_and_roc(labels, probs, Path(out_dir) / "confusion_roc.png", positive)
        return metrics

    def save_model(self, model: nn.Module, out_dir: Path) -> Path:
        model = getattr(model, "module", model)
        return model.save_pretrained(out_dir)

    def load_model(self, path: str | Path) -> nn.Module:
        return load_classifier(path, num_heads=self.cfg.model.backbone.num_heads)


def write_predictions(items: Sequence[VideoItem], probs: np.ndarray, path: Path) -> Path:
    """Per-video CSV: path, label, prediction, one probability column per class."""

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(["video", "label", "prediction",
                          *[f"prob_{c}" for c in range(probs.shape[1])]])
            for item, p in zip(items, probs, strict=True):
                out.writerow([str(item.path), item.label, int(p.argmax()),
                              *[f"{v:.6f}" for v in p]])

    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, write)
