"""``endofm probe``: k-NN and linear probes of a frozen backbone on a labelled video dataset.

Features of the training split are the probe's training set (the k-NN memory bank, the
logistic regression's data and its cross-validation folds); the held-out split is predicted
once. ``metrics.json`` has the keys fine-tuning writes (``f1``, ``precision``, ``recall``,
``accuracy``, ``auroc``, ``confusion_matrix``) for the first probe asked for, and every probe's
metrics under ``probes``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from endofm.config import to_dict
from endofm.data import VideoItem, read_polypdiag
from endofm.data.clips import VideoClipsConfig
from endofm.data.formats import FormatOptions, read_format, select_items
from endofm.eval.features import cache_key, cached, embed_videos, file_identity
from endofm.eval.knn import knn_classify
from endofm.eval.linear import DEFAULT_CS, linear_probe
from endofm.eval.metrics import classification_metrics
from endofm.models import BackboneConfig, create_backbone
from endofm.utils.checks import require_at_least, require_in_range
from endofm.utils.device import Precision, resolve_device
from endofm.utils.io import atomic_write_json
from endofm.utils.seed import seed_everything

FORMATS = ("folders", "manifest", "polypdiag")
METHODS = ("knn", "linear", "all")
TEST_FRACTION = 0.2  # own data without a test split: this fraction of its videos is held out


@dataclass
class ProbeModelConfig:
    """The backbone (its weights are ``--checkpoint``; its size and frame count follow
    ``data.crop_size`` / ``data.num_frames``) and the seed of a randomly initialised one (no
    checkpoint)."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    init_seed: int = 0  # seed of the random initialisation when no --checkpoint is given


@dataclass
class ProbeSettings:
    # neighbour counts of the k-NN classifiers (one result per k)
    k: list[int] = field(default_factory=lambda: [10, 20])
    temperature: float = 0.07  # k-NN vote weight exp(similarity / temperature)
    # inverse L2 strengths the logistic-regression probe cross-validates among
    Cs: list[float] = field(default_factory=lambda: list(DEFAULT_CS))
    folds: int = 5  # stratified cross-validation folds that choose C
    seed: int = 0  # seed of the cross-validation folds and the logistic regression
    positive_class: int = 1  # binary data: the class F1/precision/recall/AUROC refer to

    def __post_init__(self) -> None:
        if not self.k or min(self.k) < 1:
            raise ValueError(f"probe.k must list neighbour counts >= 1, got {list(self.k)}")
        if not self.Cs or min(self.Cs) <= 0:
            raise ValueError(f"probe.Cs must list regularisation strengths > 0, got "
                             f"{list(self.Cs)}")
        require_in_range(self, "probe", 0, math.inf, "temperature", low_open=True)
        require_at_least(self, "probe", 1, "folds")
        require_at_least(self, "probe", 0, "positive_class")


@dataclass
class ProbeConfig:
    model: ProbeModelConfig = field(default_factory=ProbeModelConfig)
    data: VideoClipsConfig = field(default_factory=VideoClipsConfig)
    probe: ProbeSettings = field(default_factory=ProbeSettings)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: Precision = Precision.fp32  # precision of the feature-extraction forward passes

    def __post_init__(self) -> None:
        self.model.backbone.bind(self.data.crop_size, self.data.num_frames,
                                 "data.crop_size/data.num_frames")


def build_backbone(cfg: Any, checkpoint: str | Path | None) -> torch.nn.Module:
    """The frozen backbone: ``checkpoint``'s weights, or a seeded random initialisation."""
    seed_everything(cfg.model.init_seed)
    return create_backbone(cfg.model.backbone, pretrained=str(checkpoint) if checkpoint else None,
                           drop_path_rate=0.0)


def split_features(cfg: Any, backbone: torch.nn.Module, weights_id: Any,
                   items: list[VideoItem], cache_dir: str | Path | None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(features ``[N, D]``, labels ``[N]``) of ``items``, from the cache when possible."""
    settings = {"model": to_dict(cfg.model), "data": to_dict(cfg.data),
                "precision": cfg.precision}
    device = resolve_device(cfg.device)

    def compute() -> np.ndarray:
        return embed_videos(backbone.to(device), items, cfg.data, device, cfg.precision)

    feats, _ = cached(cache_dir, cache_key(weights_id, settings, items), compute)
    return feats, np.array([it.label for it in items], dtype=np.int64)


def probe_scores(train: np.ndarray, y_train: np.ndarray, test: np.ndarray,
                 settings: Any, method: str = "all", num_classes: int | None = None
                 ) -> dict[str, tuple[np.ndarray, dict]]:
    """``{probe name: (class probabilities [Q, C], details)}`` for ``knn_k<k>`` and/or
    ``linear``, in the order asked for. A k-NN's ``k_used`` is ``k`` capped at the number of
    training rows (a larger ``k`` lets every training row vote)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    num_classes = num_classes or max(int(y_train.max()) + 1, 2)
    out: dict[str, tuple[np.ndarray, dict]] = {}
    if method in ("knn", "all"):
        for k in settings.k:
            probs = knn_classify(train, y_train, test, k, settings.temperature, num_classes)
            out[f"knn_k{k}"] = probs, {"k": int(k), "k_used": min(int(k), len(train)),
                                       "temperature": settings.temperature}
    if method in ("linear", "all"):
        fitted = linear_probe(train, y_train, tuple(settings.Cs), settings.folds, settings.seed)
        probs = fitted.predict_proba(test)
        if probs.shape[1] < num_classes:
            probs = np.pad(probs, ((0, 0), (0, num_classes - probs.shape[1])))
        out["linear"] = probs, {"C": fitted.C, "cv_accuracy": fitted.cv_score}
    return out


def evaluate_probes(train: np.ndarray, y_train: np.ndarray, test: np.ndarray,
                    y_test: np.ndarray, settings: Any, method: str = "all",
                    names: list[str] | None = None) -> dict[str, Any]:
    """Fine-tuning's classification metrics for each probe: ``{name: metrics | details}``
    (``names``: the class names, which also fix the number of classes)."""
    scores = probe_scores(train, y_train, test, settings, method,
                          None if names is None else len(names))
    return {name: classification_metrics(y_test, probs, settings.positive_class, names)
            | details for name, (probs, details) in scores.items()}


def read_splits(data: str | Path, fmt: str, seed: int
                ) -> tuple[list[VideoItem], list[VideoItem], list[str] | None, str]:
    """(train items, test items, class names, test split name) of ``data`` in ``fmt``:
    PolypDiag's train/val split files, or an own format (``manifest``, ``folders``) whose test
    split is its own or carved by video (``TEST_FRACTION``, seeded by ``probe.seed``)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "polypdiag":
        return read_polypdiag(data, "train"), read_polypdiag(data, "val"), None, "val"
    labelled = read_format(fmt, data, FormatOptions())
    if labelled.multi_label:
        raise ValueError(f"{data}: multi-label data; the probes are single-label (fine-tune "
                         "with `endofm finetune classification` instead)")
    return (select_items(labelled, "train", TEST_FRACTION, seed),
            select_items(labelled, "test", TEST_FRACTION, seed), list(labelled.classes.names),
            "test")


def run_probe(cfg: Any, checkpoint: str | Path | None, data: str | Path, output: str | Path,
              fmt: str = "polypdiag", method: str = "all",
              cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Probe ``checkpoint`` (``None``: random init) on ``data``; writes ``output/metrics.json``
    and returns its content. Features are cached under ``cache_dir`` (default
    ``output/features``)."""
    output = Path(output)
    cache_dir = output / "features" if cache_dir is None else cache_dir
    train_items, test_items, names, test_split = read_splits(data, fmt, cfg.probe.seed)
    train_split = "train"
    if not train_items or not test_items:
        raise ValueError(f"{data}: the {train_split} and {test_split} splits must both have "
                         f"videos ({len(train_items)} and {len(test_items)} found)")
    backbone = build_backbone(cfg, checkpoint)
    weights_id = (file_identity(checkpoint) if checkpoint is not None
                  else f"random-init-{cfg.model.init_seed}")
    train, y_train = split_features(cfg, backbone, weights_id, train_items, cache_dir)
    test, y_test = split_features(cfg, backbone, weights_id, test_items, cache_dir)
    probes = evaluate_probes(train, y_train, test, y_test, cfg.probe, method, names)
    first = next(iter(probes))
    result = {**probes[first], "probe": first, "split": test_split,
              "checkpoint": None if checkpoint is None else str(checkpoint),
              "num_train_items": len(train_items), "num_test_items": len(test_items),
              "probes": probes}
    atomic_write_json(result, output / "metrics.json")
    return result
