"""Small-data fine-tuning aids for classification: class-balanced loss weights or sampling, and
a linear-probe warm start of the head (LP-FT: fit the head on frozen features first, then
fine-tune everything, so the backbone's first updates are not driven by a random head)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from endofm.data import VideoItem
from endofm.eval import features
from endofm.eval.linear import linear_probe
from endofm.tasks.classification.data import ClassificationDataConfig
from endofm.tasks.classification.model import VideoClassifier


def balanced_class_weights(labels: Sequence[int], num_classes: int) -> Tensor:
    """``[C]`` weights ``N / (C · n_c)`` (1 for a balanced set); absent classes get 0."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)
    weights = np.where(counts > 0, len(labels) / (num_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def class_balanced_order(items: Sequence[VideoItem]) -> list[VideoItem]:
    """The items of every class cycled round-robin until each class has given as many as the
    largest one: a list of ``C · max n_c`` items in which every class is equally frequent
    (minority items repeat, each as evenly as possible). Classes absent from ``items`` are
    skipped."""
    by_class: dict[int, list[VideoItem]] = {}
    for it in items:
        by_class.setdefault(it.label, []).append(it)
    most = max((len(v) for v in by_class.values()), default=0)
    return [by_class[c][k % len(by_class[c])] for k in range(most) for c in sorted(by_class)]


@torch.no_grad()
def linear_probe_head(model: VideoClassifier, items: Sequence[VideoItem],
                      cfg: ClassificationDataConfig, device: torch.device,
                      precision: str = "fp32", seed: int = 0,
                      max_norm: float = math.inf) -> tuple[float, float]:
    """Set ``model.linear`` to a logistic regression fitted on the frozen backbone's features
    of ``items`` (C by cross-validation; :func:`endofm.eval.linear.linear_probe`, as
    ``endofm probe``), mapped back from standardised to raw features.

    The probe's weights can be huge: a weakly pre-trained backbone's features vary little
    between videos, and standardising divides by that spread. Fine-tuning from such a head
    turns the backbone's first updates into huge logits and losses. With a finite
    ``max_norm`` the head's weights and bias are scaled down together so that no two class
    weight vectors differ by more than ``max_norm`` (L2; the spread of a logit margin over
    features of unit variance per dimension, as the backbone's final layer norm gives): the
    predicted classes and the ranking of the videos stay the probe's, only its confidence is
    tempered. Returns (the chosen C, the scale applied)."""
    feats = features.embed_videos(model.backbone, items, cfg, device, precision)
    labels = np.array([it.label for it in items])
    fitted = linear_probe(feats, labels, seed=seed)
    scaler, logreg = fitted.model[0], fitted.model[-1]
    coef = logreg.coef_ / scaler.scale_  # [1 or C, D] on raw features
    bias = logreg.intercept_ - coef @ scaler.mean_
    if len(logreg.classes_) == 2:  # one logit difference w·x + b → ±(w·x + b)/2
        coef, bias = np.stack([-coef[0], coef[0]]) / 2, np.array([-bias[0], bias[0]]) / 2
    spread = float(np.linalg.norm(coef[:, None] - coef[None], axis=-1).max())
    scale = min(1.0, max_norm / spread) if spread > 0 else 1.0
    coef, bias = coef * scale, bias * scale
    weight = torch.zeros_like(model.linear.weight)
    full_bias = torch.full_like(model.linear.bias, -1e4)  # classes absent from training
    rows = torch.as_tensor(logreg.classes_, dtype=torch.long)
    weight[rows] = torch.as_tensor(coef, dtype=weight.dtype)
    full_bias[rows] = torch.as_tensor(bias, dtype=weight.dtype)
    model.linear.weight.copy_(weight)
    model.linear.bias.copy_(full_bias)
    return fitted.C, scale
