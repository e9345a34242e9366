"""Small-data fine-tuning aids for classification: class-balanced loss weights and a
linear-probe warm start of the head (LP-FT: fit the head on frozen features first, then
fine-tune everything, so the backbone's first updates are not driven by a random head)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from endofm.data import VideoItem
from endofm.eval import features
from endofm.eval.linear import linear_probe
from endofm.models import VideoClassifier
from endofm.tasks.classification.data import ClassificationDataConfig


def balanced_class_weights(labels: Sequence[int], num_classes: int) -> Tensor:
    """``[C]`` weights ``N / (C · n_c)`` (1 for a balanced set); absent classes get 0."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)
    weights = np.where(counts > 0, len(labels) / (num_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


@torch.no_grad()
def linear_probe_head(model: VideoClassifier, items: Sequence[VideoItem],
                      cfg: ClassificationDataConfig, device: torch.device,
                      precision: str = "fp32", seed: int = 0) -> float:
    """Set ``model.linear`` to a logistic regression fitted on the frozen backbone's features
    of ``items`` (C by cross-validation; :func:`endofm.eval.linear.linear_probe`), mapped back
    from standardised to raw features. Returns the chosen C."""
    feats = features.embed_videos(model.backbone, items, cfg, device, precision)
    labels = np.array([it.label for it in items])
    fitted = linear_probe(feats, labels, seed=seed)
    scaler, logreg = fitted.model[0], fitted.model[-1]
    coef = logreg.coef_ / scaler.scale_  # [1 or C, D] on raw features
    bias = logreg.intercept_ - coef @ scaler.mean_
    if len(logreg.classes_) == 2:  # one logit difference w·x + b → ±(w·x + b)/2
        coef, bias = np.stack([-coef[0], coef[0]]) / 2, np.array([-bias[0], bias[0]]) / 2
    weight = torch.zeros_like(model.linear.weight)
    full_bias = torch.full_like(model.linear.bias, -1e4)  # classes absent from training
    rows = torch.as_tensor(logreg.classes_, dtype=torch.long)
    weight[rows] = torch.as_tensor(coef, dtype=weight.dtype)
    full_bias[rows] = torch.as_tensor(bias, dtype=weight.dtype)
    model.linear.weight.copy_(weight)
    model.linear.bias.copy_(full_bias)
    return fitted.C
