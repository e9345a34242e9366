"""Classification metrics (binary and multi-class) with scikit-learn, and their plots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn import metrics as skm

from endofm.utils.figures import save_figure


def classification_metrics(labels: np.ndarray, probs: np.ndarray, positive: int = 1,
                           names: Sequence[str] | None = None) -> dict[str, Any]:
    """Metrics of class probabilities ``probs [N, C]`` against integer ``labels [N]``.

    Binary (C == 2): F1, precision and recall of class ``positive`` (PolypDiag: 1 = abnormal),
    AUROC of its probability. Multi-class: macro averages and one-vs-rest AUROC. AUROC is
    ``None`` when only one class is present. Always: ``f1_macro``, ``f1_micro``,
    ``balanced_accuracy`` (mean recall over the classes present), ``per_class``
    (``{name: {precision, recall, f1, support}}``, ``names`` default ``"0"``…) and
    ``class_names`` (the confusion matrix's row and column order; rows are the labels). All
    values are fractions in [0, 1], except ``log_loss`` (the mean cross-entropy of the labels'
    probabilities, clipped at 1e-7) and ``neg_log_loss`` (its negative: higher is better, a
    selection score).
    """
    labels = np.asarray(labels, dtype=np.int64)
    num_classes = probs.shape[1]
    preds = probs.argmax(1)
    binary = num_classes == 2
    avg = {"average": "binary", "pos_label": positive} if binary else {"average": "macro"}
    out: dict[str, Any] = {
        "f1": float(skm.f1_score(labels, preds, zero_division=0, **avg)),
        "precision": float(skm.precision_score(labels, preds, zero_division=0, **avg)),
        "recall": float(skm.recall_score(labels, preds, zero_division=0, **avg)),
        "accuracy": float(skm.accuracy_score(labels, preds)),
        "auroc": None,
        "confusion_matrix": skm.confusion_matrix(
            labels, preds, labels=list(range(num_classes))).tolist(),
    }
    out |= per_class_metrics(labels, preds, class_names(names, num_classes))
    clipped = np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0)
    out["log_loss"] = float(-np.log(clipped).mean()) if len(labels) else None
    out["neg_log_loss"] = None if out["log_loss"] is None else -out["log_loss"]
    if len(np.unique(labels)) > 1:
        out["auroc"] = (float(skm.roc_auc_score(labels, probs[:, positive])) if binary
                        else one_vs_rest_auroc(labels, probs))
    return out


def one_vs_rest_auroc(labels: np.ndarray, probs: np.ndarray) -> float | None:
    """The mean one-vs-rest AUROC over the classes present among ``labels`` (a class no label
    has cannot be ranked; ``None`` if fewer than two classes are present)."""
    present = [c for c in range(probs.shape[1]) if (labels == c).any() and (labels != c).any()]
    if not present:
        return None
    return float(np.mean([skm.roc_auc_score(labels == c, probs[:, c]) for c in present]))


def class_names(names: Sequence[str] | None, num_classes: int) -> list[str]:
    """``names`` as a list (checked against ``num_classes``), or ``"0"``, ``"1"``, …"""
    if names is None:
        return [str(c) for c in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} class names for {num_classes} classes")
    return list(names)


def per_class_metrics(labels: np.ndarray, preds: np.ndarray, names: list[str]
                      ) -> dict[str, Any]:
    """``f1_macro`` (over the classes labelled or predicted), ``f1_micro``,
    ``balanced_accuracy`` (mean recall over the classes labelled) and ``per_class`` of
    single-label predictions ``preds [N]`` against ``labels [N]`` (both class indices)."""
    classes = list(range(len(names)))
    prec, rec, f1, support = skm.precision_recall_fscore_support(
        labels, preds, labels=classes, zero_division=0)
    present = support > 0
    seen = present | np.isin(classes, preds)  # a class neither given nor predicted is no data
    return {
        "f1_macro": float(f1[seen].mean()) if seen.any() else 0.0,
        "f1_micro": float(skm.f1_score(labels, preds, labels=classes, average="micro",
                                       zero_division=0)),
        "balanced_accuracy": float(rec[present].mean()) if present.any() else 0.0,
        "per_class": {n: {"precision": float(p), "recall": float(r), "f1": float(f),
                          "support": int(s)}
                      for n, p, r, f, s in zip(names, prec, rec, f1, support, strict=True)},
        "class_names": names,
    }


def multilabel_metrics(targets: np.ndarray, probs: np.ndarray, names: Sequence[str] | None = None,
                       threshold: float = 0.5) -> dict[str, Any]:
    """Metrics of per-class probabilities ``probs [N, C]`` (sigmoids) against 0/1
    ``targets [N, C]``; a class is predicted where its probability >= ``threshold``.

    ``map``: the mean over classes with at least one positive of their average precision
    (``per_class[name]["ap"]``, ``None`` for a class without positives); ``f1`` = ``f1_macro``,
    ``f1_micro``, ``precision``/``recall`` (macro), ``accuracy`` (exact match of the label set),
    ``log_loss`` (mean binary cross-entropy, clipped at 1e-7) and ``neg_log_loss``.
    """
    targets = np.asarray(targets, dtype=np.int64)
    names = class_names(names, probs.shape[1])
    preds = (probs >= threshold).astype(np.int64)
    prec, rec, f1, support = skm.precision_recall_fscore_support(targets, preds, zero_division=0)
    aps = [float(skm.average_precision_score(targets[:, c], probs[:, c]))
           if targets[:, c].any() else None for c in range(len(names))]
    scored = [a for a in aps if a is not None]
    clipped = np.clip(np.where(targets == 1, probs, 1 - probs), 1e-7, 1.0)
    log_loss = float(-np.log(clipped).mean()) if len(targets) else None
    return {
        "map": float(np.mean(scored)) if scored else None,
        "f1": float(f1.mean()), "f1_macro": float(f1.mean()),
        "f1_micro": float(skm.f1_score(targets, preds, average="micro", zero_division=0)),
        "precision": float(prec.mean()), "recall": float(rec.mean()),
        "accuracy": float(skm.accuracy_score(targets, preds)),
        "log_loss": log_loss, "neg_log_loss": None if log_loss is None else -log_loss,
        "threshold": threshold,
        "per_class": {n: {"ap": a, "precision": float(p), "recall": float(r), "f1": float(f),
                          "support": int(s)}
                      for n, a, p, r, f, s in zip(names, aps, prec, rec, f1, support,
                                                  strict=True)},
        "class_names": names,
        "multi_label": True,
    }


def plot_confusion_and_roc(labels: np.ndarray, probs: np.ndarray, out_path: Path,
                           positive: int = 1, names: Sequence[str] | None = None) -> Path:
    """A PNG with the confusion matrix (class names on its axes) and (binary) the ROC
    curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    num_classes = probs.shape[1]
    side = max(4.0, 0.45 * num_classes)
    fig, axes = plt.subplots(1, 2, figsize=(side + 5, side))
    skm.ConfusionMatrixDisplay.from_predictions(
        labels, probs.argmax(1), labels=list(range(num_classes)), ax=axes[0], colorbar=False,
        display_labels=class_names(names, num_classes),
        xticks_rotation="vertical" if num_classes > 4 else "horizontal")
    axes[0].set_title("confusion matrix")
    if num_classes == 2 and len(np.unique(labels)) > 1:
        skm.RocCurveDisplay.from_predictions(labels, probs[:, positive], pos_label=positive,
                                             ax=axes[1],
                                             name=class_names(names, num_classes)[positive])
        axes[1].set_title("ROC")
    else:
        axes[1].axis("off")
    fig.tight_layout()
    return save_figure(fig, out_path, dpi=110)


def plot_per_class_ap(metrics: dict[str, Any], out_path: Path) -> Path:
    """A PNG bar chart of each class's average precision (multi-label metrics)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = metrics["class_names"]
    aps = [metrics["per_class"][n]["ap"] or 0.0 for n in names]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.5 * len(names) + 2), 3.5))
    ax.bar(range(len(names)), aps)
    ax.set_xticks(range(len(names)), names, rotation=90 if len(names) > 4 else 0)
    ax.set_ylim(0, 1)
    ax.set_ylabel("average precision")
    ax.set_title(f"mAP {metrics['map']:.3f}" if metrics["map"] is not None else "mAP n/a")
    fig.tight_layout()
    return save_figure(fig, out_path, dpi=110)
