import numpy as np
import pytest

from endofm.eval.metrics import classification_metrics, plot_confusion_and_roc


def test_binary_metrics_by_hand(tmp_path):
    labels = np.array([1, 1, 1, 0, 0, 0])
    p1 = np.array([0.9, 0.8, 0.3, 0.6, 0.2, 0.1])  # preds 1 1 0 1 0 0
    probs = np.stack([1 - p1, p1], 1)
    m = classification_metrics(labels, probs)
    # TP=2, FN=1, FP=1, TN=2
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(4 / 6)
    # AUROC: of 9 (pos, neg) pairs, pos scores beat neg in 8 (0.3 < 0.6 only loses)
    assert m["auroc"] == pytest.approx(8 / 9)
    assert m["confusion_matrix"] == [[2, 1], [1, 2]]
    png = plot_confusion_and_roc(labels, probs, tmp_path / "c.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_positive_class_is_configurable():
    labels = np.array([0, 0, 1])
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]])
    assert classification_metrics(labels, probs, positive=0)["recall"] == pytest.approx(0.5)
    assert classification_metrics(labels, probs, positive=1)["precision"] == pytest.approx(0.5)


def test_single_class_has_no_auroc_and_multiclass_macro():
    assert classification_metrics(np.array([1, 1]), np.array([[0.2, 0.8], [0.6, 0.4]]))[
        "auroc"] is None
    labels = np.array([0, 1, 2, 2])
    probs = np.eye(3)[[0, 1, 2, 1]]
    m = classification_metrics(labels, probs)
    assert m["accuracy"] == pytest.approx(0.75)
    # per-class recall 1, 1, 0.5 → macro 5/6
    assert m["recall"] == pytest.approx(5 / 6)
