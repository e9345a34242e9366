"""The ``classification`` task: backbone CLS → linear head, full fine-tuning or a linear
probe, test-time averaging over clips × crops. Data: PolypDiag's layout, or the user's own
labelled videos (``data.format``: ``manifest``, ``folders``; :mod:`endofm.data.formats`) with
any number of named classes, several labels per video (multi-label: a sigmoid per class)
included."""

from __future__ import annotations

import csv
import logging
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
from endofm.data.formats import (
    ClassSet,
    FormatOptions,
    LabelledData,
    detect_classification_format,
    read_format,
    select_items,
)
from endofm.eval.metrics import (
    classification_metrics,
    multilabel_metrics,
    plot_confusion_and_roc,
    plot_per_class_ap,
)
from endofm.models import BackboneConfig, create_backbone
from endofm.models.checkpoint import read_state_meta, weights_metadata
from endofm.tasks.base import EngineConfig, Task
from endofm.tasks.classification import SPEC
from endofm.tasks.classification.data import ClassificationDataConfig, TrainClips
from endofm.tasks.classification.model import VideoClassifier, load_classifier
from endofm.tasks.classification.recipe import (
    balanced_class_weights,
    class_balanced_order,
    linear_probe_head,
)
from endofm.tasks.own_data import ReleaseOrOwnData
from endofm.utils.checks import require_at_least, require_in_range
from endofm.utils.device import autocast
from endofm.utils.io import atomic_write
from endofm.utils.progress import progress

logger = logging.getLogger(__name__)


@dataclass
class ClassificationModelConfig:
    """The backbone (its size and frame count follow ``data.crop_size`` / ``data.num_frames``)
    and the head."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    num_classes: int | None = None  # None: sized from the data (PolypDiag: 2)
    head_dropout: float = 0.0  # dropout on the backbone's features before the linear head
    # binary data: the class F1/precision/recall/AUROC refer to (PolypDiag: 1 = abnormal)
    positive_class: int = 1

    def __post_init__(self) -> None:
        if self.num_classes is not None:
            require_at_least(self, "model", 2, "num_classes")
            require_in_range(self, "model", 0, self.num_classes - 1, "positive_class")
        require_in_range(self, "model", 0, 1, "head_dropout", high_open=True)
        require_at_least(self, "model", 0, "positive_class")


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

    # none; loss: inverse-frequency weighted cross-entropy; sample: classes drawn equally
    balance: Balance = Balance.none
    # fit the head as a linear probe on frozen features before fine-tuning (LP-FT)
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


POLYPDIAG_CLASSES = ClassSet(("normal", "abnormal"), (0, 1))
FORMATS = ("auto", *SPEC.formats)


def classification_format(root: Path, setting: str) -> str:
    """``data.format``, or (``auto``) the format ``root`` has: PolypDiag's ``splits/`` +
    ``videos/``, a manifest file, or class folders."""
    if setting not in FORMATS:
        raise ValueError(f"data.format must be one of {', '.join(FORMATS)} for "
                         f"classification, got {setting!r}")
    if setting != "auto":
        return setting
    if (root / "splits").is_dir() and (root / "videos").is_dir():
        return "polypdiag"
    found = detect_classification_format(root)
    if found is None:
        raise ValueError(f"{root}: not a classification dataset (a PolypDiag splits/ + "
                         "videos/ folder, a manifest .csv/.jsonl, or DIR/<class>/<video> "
                         "folders); set data.format")
    return found


class ClassificationTask(ReleaseOrOwnData, Task):
    name = "classification"
    release_format = "polypdiag"
    config_class = ClassificationConfig
    formats = FORMATS

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.classes: ClassSet | None = None  # from the data, or the loaded model's
        self.multi_label = False
        self._data: dict[Path, LabelledData] = {}

    @property
    def selection_metric(self) -> str:  # type: ignore[override]
        return str(self.cfg.recipe.select_metric)

    @property
    def test_split(self) -> str:  # type: ignore[override]
        """PolypDiag's held-out split is ``splits/val.txt``; the own formats' is ``test``."""
        return "val" if self.from_release() else "test"

    def bind_data(self, root: str | Path) -> None:
        self.format = classification_format(Path(root), str(self.cfg.data.format))

    def class_set(self) -> ClassSet:
        """The classes of the data read (or of the loaded model)."""
        if self.classes is not None:
            return self.classes
        count = self.cfg.model.num_classes
        return POLYPDIAG_CLASSES if count in (None, 2) else ClassSet.numbered(count)

    def build_model(self, pretrained: str | Path | None) -> nn.Module:
        backbone = create_backbone(self.backbone_settings(pretrained))
        return VideoClassifier(backbone, len(self.class_set()), self.cfg.model.head_dropout)

    def labelled(self, root: Path) -> LabelledData:
        """All items of an own-format dataset, read once per root."""
        if root not in self._data:
            options = FormatOptions(self.cfg.data.classes_file, self.cfg.model.num_classes,
                                    known_classes=self.classes)
            self._data[root] = read_format(self.format, root, options)
        return self._data[root]

    def adopt(self, classes: ClassSet, multi_label: bool, root: Path) -> None:
        """Take the data's classes (training), or check them against the model's."""
        if self.classes is None:
            classes.check_count(self.cfg.model.num_classes, "model.num_classes")
            if len(classes) < 2 and not multi_label:
                raise ValueError(f"{root}: one class ({', '.join(classes.names)}); "
                                 "classification needs at least two")
            if len(classes) == 2 or self.cfg.model.positive_class < len(classes):
                require_in_range(self.cfg.model, "model", 0, len(classes) - 1,
                                 "positive_class")
            self.classes, self.multi_label = classes, multi_label
            self.cfg.model.num_classes = len(classes)  # recorded in the run's config.yaml
            return
        classes.check_same(self.classes, str(root))
        if multi_label != self.multi_label:
            kind = "multi-label" if multi_label else "single-label"
            raise ValueError(f"{root}: {kind} data for a model trained on the other kind")

    def read_items(self, root: str | Path, split: str) -> list[VideoItem]:
        root = Path(root)
        if self.format is None:
            self.bind_data(root)
        if self.format == "polypdiag":
            count = self.cfg.model.num_classes or len(self.class_set())
            self.adopt(POLYPDIAG_CLASSES if count == 2 else ClassSet.numbered(count), False,
                       root)
            return read_polypdiag(root, split, num_classes=count)
        data = self.labelled(root)
        self.adopt(data.classes, data.multi_label, root)
        protocol = self.cfg.protocol
        items = select_items(data, split, protocol.test_fraction, protocol.val_seed)
        if not items and split != "val":
            raise ValueError(f"{root}: the {split} split has no videos")
        return items

    def item_groups(self, items: Sequence[VideoItem]) -> list[str] | None:
        """Clips of one video stay together when a validation split is carved."""
        return None if self.from_release() else [str(it.path) for it in items]

    def describe_item(self, item: VideoItem) -> str:
        if item.start is None:
            return str(item.path)
        return f"{item.path} [{item.start:g}-{item.end:g} s]"

    def train_dataset(self, items: Sequence[VideoItem]) -> Dataset:
        balance = self.cfg.recipe.balance
        num_classes = len(self.class_set())
        if self.multi_label:
            if balance != "none" or self.cfg.recipe.lp_warm_start:
                raise ValueError("recipe.balance and recipe.lp_warm_start are for single-label "
                                 "data; this data is multi-label")
            return TrainClips(items, self.cfg.data, num_classes)
        if balance == "loss":
            self.class_weights = balanced_class_weights([it.label for it in items], num_classes)
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
            logger.info("linear-probe warm start of the head (C=%g, weights scaled by %.3g)",
                        C, scale)

    def loss(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        clips, labels = batch
        logits = model(clips)
        if self.multi_label:
            return F.binary_cross_entropy_with_logits(logits.float(), labels.float())
        weight = getattr(self, "class_weights", None)
        return F.cross_entropy(logits, labels,
                               weight=None if weight is None else weight.to(logits.device),
                               label_smoothing=self.cfg.recipe.label_smoothing)

    @torch.no_grad()
    def predict(self, model: nn.Module, item: VideoItem, device: torch.device,
                precision: str) -> np.ndarray:
        """Class probabilities of one video (softmax; multi-label: a sigmoid per class),
        averaged over its test views. ``[C]``."""
        views = test_views(item, self.cfg.data).to(device)
        with autocast(device, precision):
            logits = model(views).float()
        probs = logits.sigmoid() if self.multi_label else logits.softmax(-1)
        return probs.mean(0).cpu().numpy()

    def evaluate(self, model: nn.Module, items: Sequence[VideoItem], device: torch.device,
                 precision: str, out_dir: Path | None = None) -> dict[str, Any]:
        probs = np.stack([self.predict(model, it, device, precision)
                          for it in progress(items, desc="evaluate", unit="video")])
        names = list(self.class_set().names)
        if self.multi_label:
            targets = np.zeros(probs.shape, dtype=np.int64)
            for row, item in zip(targets, items, strict=True):
                row[list(item.labels or ())] = 1
            metrics = multilabel_metrics(targets, probs, names)
            if out_dir is not None:
                write_predictions(items, probs, Path(out_dir) / "predictions.csv", names, True)
                plot_per_class_ap(metrics, Path(out_dir) / "per_class_ap.png")
        else:
            labels = np.array([it.label for it in items])
            positive = self.cfg.model.positive_class
            metrics = classification_metrics(labels, probs, positive, names)
            if out_dir is not None:
                write_predictions(items, probs, Path(out_dir) / "predictions.csv", names)
                plot_confusion_and_roc(labels, probs, Path(out_dir) / "confusion_roc.png",
                                       positive, names)
        return metrics | {"classes": self.class_set().to_json()}

    def save_model(self, model: nn.Module, out_dir: Path) -> Path:
        """The classifier directory; its ``config.json`` names the classes (``classes``:
        ``[{"index", "id", "name"}]``) and whether the head is multi-label (sigmoids)."""
        model = getattr(model, "module", model)
        return model.save_pretrained(out_dir, extra={"classes": self.class_set().to_json(),
                                                     "multi_label": self.multi_label})

    def load_model(self, path: str | Path) -> nn.Module:
        """The classifier; its classes (and multi-label head) become this task's, so data read
        afterwards is mapped onto them. A released PolypDiag file is normal/abnormal."""
        model = load_classifier(path, num_heads=self.cfg.model.backbone.num_heads)
        meta = (read_state_meta(path) if Path(path).is_dir()
                else weights_metadata(path) or {})  # a released file records none
        self.classes = (ClassSet.from_json(meta["classes"]) if "classes" in meta
                        else POLYPDIAG_CLASSES if model.num_classes == 2
                        else ClassSet.numbered(model.num_classes))
        self.multi_label = bool(meta.get("multi_label", False))
        self.cfg.model.num_classes = model.num_classes
        self._data.clear()
        return model


def write_predictions(items: Sequence[VideoItem], probs: np.ndarray, path: Path,
                      names: Sequence[str], multi_label: bool = False) -> Path:
    """Per-video CSV: path, window (``start``/``end``), ``label`` and ``prediction`` (class
    indices; several joined by ``|``), the same as names (``label_name``,
    ``prediction_name``), and one probability column per class index (``prob_<index>``)."""

    def joined(indices: Sequence[int]) -> tuple[str, str]:
        return "|".join(str(c) for c in indices), "|".join(names[c] for c in indices)

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(["video", "start", "end", "label", "prediction", "label_name",
                          "prediction_name", *[f"prob_{c}" for c in range(probs.shape[1])]])
            for item, p in zip(items, probs, strict=True):
                truth = item.labels or () if multi_label else (item.label,)
                guess = np.flatnonzero(p >= 0.5) if multi_label else (int(p.argmax()),)
                (label, label_name), (pred, pred_name) = joined(truth), joined(list(guess))
                out.writerow([str(item.path), "" if item.start is None else item.start,
                              "" if item.end is None else item.end, label, pred, label_name,
                              pred_name, *[f"{v:.6f}" for v in p]])

    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, write)
