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


def test_per_class_metrics_and_balanced_accuracy_with_names():
    from endofm.eval.metrics import classification_metrics

    labels = np.array([0, 0, 0, 0, 1, 2])
    preds = np.array([0, 0, 0, 1, 1, 1])
    m = classification_metrics(labels, np.eye(3)[preds], names=["a", "b", "c"])
    # recall a 3/4, b 1, c 0 → balanced 7/12; precision a 1, b 1/3, c 0
    assert m["balanced_accuracy"] == pytest.approx(7 / 12)
    assert m["per_class"]["a"] == {"precision": 1.0, "recall": 0.75,
                                   "f1": pytest.approx(6 / 7), "support": 4}
    assert m["per_class"]["b"]["precision"] == pytest.approx(1 / 3)
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["f1_micro"] == pytest.approx(4 / 6)  # single-label micro F1 = accuracy
    assert m["f1_macro"] == pytest.approx((6 / 7 + 0.5 + 0) / 3)
    assert m["class_names"] == ["a", "b", "c"]
    assert m["confusion_matrix"] == [[3, 1, 0], [0, 1, 0], [0, 1, 0]]


def test_multilabel_map_and_thresholded_f1_by_hand(tmp_path):
    from endofm.eval.metrics import multilabel_metrics, plot_per_class_ap

    targets = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]])
    probs = np.array([[0.9, 0.2, 0.1], [0.4, 0.8, 0.3], [0.6, 0.7, 0.2], [0.1, 0.1, 0.4]])
    m = multilabel_metrics(targets, probs, ["x", "y", "z"])
    # x: positives score 0.9, 0.4; negatives 0.6, 0.1 → ranking 0.9+, 0.6-, 0.4+ : AP (1 + 2/3)/2
    assert m["per_class"]["x"]["ap"] == pytest.approx((1 + 2 / 3) / 2)
    assert m["per_class"]["y"]["ap"] == pytest.approx(1.0)
    assert m["per_class"]["z"]["ap"] is None  # no positive: left out of the mean
    assert m["map"] == pytest.approx(((1 + 2 / 3) / 2 + 1) / 2)
    # at 0.5: x predicted on rows 0, 2 (TP 1, FP 1, FN 1) → F1 0.5; y rows 1, 2 → F1 1
    assert m["per_class"]["x"]["f1"] == pytest.approx(0.5)
    assert m["f1_macro"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert m["accuracy"] == pytest.approx(2 / 4)  # rows 0 and 3 are predicted exactly
    assert plot_per_class_ap(m, tmp_path / "ap.png").read_bytes()[:4] == b"\x89PNG"
