"""The ``classification`` task (PolypDiag): backbone CLS → linear head, full fine-tuning or a
linear probe, test-time averaging over clips × crops."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
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
from endofm.tasks.classification.recipe import (
    balanced_class_weights,
    class_balanced_order,
    linear_probe_head,
)
from endofm.utils.checks import require_at_least, require_in_range
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

    def __post_init__(self) -> None:
        require_at_least(self, "model", 2, "num_classes")
        require_in_range(self, "model", 0, 1, "head_dropout", high_open=True)
        require_in_range(self, "model", 0, self.num_classes - 1, "positive_class")


class Balance(StrEnum):
    none = "none"
    loss = "loss"
    sample = "sample"


class SelectMetric(StrEnum):
    f1 = "f1"
    neg_log_loss = "neg_log_loss"
    accuracy = "accuracy"


@dataclass
class ClassificationRecipeConfig:
    """Small-data aids: ``balance="loss"`` weights the cross-entropy by inverse class frequency
    of the training items, ``balance="sample"`` draws every class equally often per epoch
    (minority videos repeat); ``lp_warm_start`` fits the head as a linear probe on the frozen
    backbone's features before fine-tuning (LP-FT) and, with a validation carve-out, makes that
    starting point a selection candidate (epoch 0), so the kept model is never worse on the
    carve-out than the probe it started from."""

    balance: Balance = Balance.none
    lp_warm_start: bool = False
    # the validation score that selects the kept epoch (and drives early stopping): f1, or
    # neg_log_loss (the carve-out's mean cross-entropy, negated), which moves smoothly where a
    # few-video F1 jumps in big steps and lets one lucky epoch win
    select_metric: SelectMetric = SelectMetric.f1
    # the warm-started head is scaled down (same predictions) until its class weight vectors
    # differ by at most this (L2; recipe.linear_probe_head); .inf: the probe as fitted
    lp_max_norm: float = math.inf
    # cross-entropy against (1 - s) one-hot + s uniform targets: a bounded logit gap, so a few
    # training videos cannot drive the model to arbitrary confidence
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError("recipe.label_smoothing must be in [0, 1) "
                             f"(got {self.label_smoothing})")


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

    @property
    def selection_metric(self) -> str:  # type: ignore[override]
        return str(self.cfg.recipe.select_metric)
    test_split = "val"  # PolypDiag's held-out split is splits/val.txt

    def build_model(self, pretrained: str | Path | None) -> nn.Module:
        m = self.cfg.model
        backbone = create_backbone(self.backbone_settings(pretrained))
        return VideoClassifier(backbone, m.num_classes, m.head_dropout)

    def read_items(self, root: str | Path, split: str) -> list[VideoItem]:
        return read_polypdiag(root, split, num_classes=self.cfg.model.num_classes)

    def train_dataset(self, items: Sequence[VideoItem]) -> Dataset:
        balance = self.cfg.recipe.balance
        if balance == "loss":
            self.class_weights = balanced_class_weights([it.label for it in items],
                                                        self.cfg.model.num_classes)
        if balance == "sample":
            return TrainClips(class_balanced_order(items), self.cfg.data)
        return TrainClips(items, self.cfg.data)

    def stratify_labels(self, items: Sequence[VideoItem]) -> list[int]:
        """The validation carve-out keeps the class proportions of the training split."""
        return [it.label for it in items]

    def select_initial(self) -> bool:
        return self.cfg.recipe.lp_warm_start

    def prepare(self, model: nn.Module, items: Sequence[VideoItem], device: torch.device,
                precision: str) -> None:
        """LP-FT: the head starts as a linear probe of the frozen backbone (if enabled)."""
        recipe = self.cfg.recipe
        if recipe.lp_warm_start:
            C, scale = linear_probe_head(model, items, self.cfg.data, device, precision,
                                         max_norm=recipe.lp_max_norm)
            print(f"linear-probe warm start of the head (C={C:g}, weights scaled by "
                  f"{scale:.3g})")

    def loss(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        clips, labels = batch
        logits = model(clips)
        weight = getattr(self, "class_weights", None)
        return F.cross_entropy(logits, labels,
                               weight=None if weight is None else weight.to(logits.device),
                               label_smoothing=self.cfg.recipe.label_smoothing)

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
