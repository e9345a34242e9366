"""Classification metrics (binary and multi-class) with scikit-learn, and their plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sklearn import metrics as skm

from endofm.utils.figures import save_figure


def classification_metrics(labels: np.ndarray, probs: np.ndarray,
                           positive: int = 1) -> dict[str, Any]:
    """Metrics of class probabilities ``probs [N, C]`` against integer ``labels [N]``.

    Binary (C == 2): F1, precision and recall of class ``positive`` (PolypDiag: 1 = abnormal),
    AUROC of its probability. Multi-class: macro averages and one-vs-rest AUROC. AUROC is
    ``None`` when only one class is present. All values are fractions in [0, 1], except
    ``log_loss`` (the mean cross-entropy of the labels' probabilities, clipped at 1e-7) and
    ``neg_log_loss`` (its negative: higher is better, a selection score).
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
    clipped = np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0)
    out["log_loss"] = float(-np.log(clipped).mean()) if len(labels) else None
    out["neg_log_loss"] = None if out["log_loss"] is None else -out["log_loss"]
    if len(np.unique(labels)) > 1:
        out["auroc"] = float(skm.roc_auc_score(labels, probs[:, positive]) if binary else
                             skm.roc_auc_score(labels, probs, multi_class="ovr",
                                               labels=list(range(num_classes))))
    return out


def plot_confusion_and_roc(labels: np.ndarray, probs: np.ndarray, out_path: Path,
                           positive: int = 1) -> Path:
    """A PNG with the confusion matrix and (binary) the ROC curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    num_classes = probs.shape[1]
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    skm.ConfusionMatrixDisplay.from_predictions(
        labels, probs.argmax(1), labels=list(range(num_classes)), ax=axes[0], colorbar=False)
    axes[0].set_title("confusion matrix")
    if num_classes == 2 and len(np.unique(labels)) > 1:
        skm.RocCurveDisplay.from_predictions(labels, probs[:, positive], pos_label=positive,
                                             ax=axes[1])
        axes[1].set_title("ROC")
    else:
        axes[1].axis("off")
    fig.tight_layout()
    return save_figure(fig, out_path, dpi=110)
