import math

import numpy as np
import pytest

from endofm.tasks.segmentation.metrics import dice, hd95, iou, sequence_metrics, summarize


def _square(shape, rows, cols):
    m = np.zeros(shape, dtype=np.uint8)
    m[rows[0]:rows[1], cols[0]:cols[1]] = 1
    return m


def test_dice_iou_hand_computed():
    pred = _square((4, 4), (0, 2), (0, 2))  # 4 px
    gt = _square((4, 4), (0, 2), (0, 3))  # 6 px, 4 shared
    assert dice(pred, gt) == pytest.approx(0.8)
    assert iou(pred, gt) == pytest.approx(4 / 6)


def test_hd95_hand_computed():
    a = np.zeros((5, 5), dtype=bool)
    b = np.zeros((5, 5), dtype=bool)
    a[0, 0], b[3, 4] = True, True
    assert hd95(a, b) == pytest.approx(5.0)
    # two 2x2 squares two columns apart: distances {1, 2} four times each → 95th pct = 2
    assert hd95(_square((4, 6), (0, 2), (0, 2)), _square((4, 6), (0, 2), (2, 4))) == \
        pytest.approx(2.0)
    assert hd95(a, a) == 0.0


def test_empty_masks():
    empty = np.zeros((4, 4), dtype=np.uint8)
    full = _square((4, 4), (1, 3), (1, 3))
    assert dice(empty, empty) == 1.0 and iou(empty, empty) == 1.0 and hd95(empty, empty) == 0.0
    for p, g in ((empty, full), (full, empty)):
        assert dice(p, g) == 0.0 and iou(p, g) == 0.0
        assert hd95(p, g) == pytest.approx(math.sqrt(18))


def test_sequence_volume_vs_frame_dice():
    sq = _square((4, 4), (0, 2), (0, 2))
    gt = np.stack([sq, sq])
    pred = np.stack([sq, np.zeros_like(sq)])
    m = sequence_metrics(pred, gt)
    assert m["dice"] == pytest.approx(2 * 4 / 12)
    assert m["dice_frame"] == pytest.approx(0.5)
    assert m["iou"] == pytest.approx(0.5)
    assert m["hd95_frame"] == pytest.approx(math.sqrt(18) / 2)
    assert summarize({"a": {"dice": 1.0}, "b": {"dice": 0.5}}) == {"dice": 0.75}


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        dice(np.zeros((2, 2)), np.zeros((3, 3)))


def test_hd95_ignores_the_farthest_five_percent():
    # a 40-pixel line, and the same line with one stray pixel 10 rows below it: 81 surface
    # distances (40 + 41), all 0 but one of 10; their 95th percentile is 0, their maximum 10
    line = np.zeros((12, 40), dtype=bool)
    line[0] = True
    stray = line.copy()
    stray[10, 0] = True
    assert hd95(stray, line) == 0.0
    # with 2 of its 40 pixels moved down by one row, 4 of the 80 distances are 1: sorted, 76
    # zeros then 4 ones; the 95th percentile sits at position 0.95 * 79 = 75.05, so 0.05
    moved = line.copy()
    moved[0, :2] = False
    moved[1, :2] = True
    assert hd95(moved, line) == pytest.approx(0.05)


def test_per_class_dice_iou_over_foreground_classes_by_hand():
    from endofm.tasks.segmentation.metrics import confusion, per_class_scores

    gt = np.array([[0, 0, 1, 1], [2, 2, 2, 255]])  # 255: ignored
    pred = np.array([[0, 1, 1, 1], [2, 2, 0, 1]])
    counts = confusion(pred, gt, 3)
    assert counts.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
    scores = per_class_scores(counts, ["bg", "tool", "organ"], background=0)
    # tool: TP 2, FP 1, FN 0 → Dice 4/5, IoU 2/3; organ: TP 2, FP 0, FN 1 → Dice 4/5, IoU 2/3
    assert scores["per_class"]["tool"] == {"dice": pytest.approx(0.8),
                                           "iou": pytest.approx(2 / 3), "pixels": 2}
    assert scores["per_class"]["organ"]["dice"] == pytest.approx(0.8)
    assert scores["dice_mean"] == pytest.approx(0.8)  # background left out of the mean
    assert scores["per_class"]["bg"]["dice"] == pytest.approx(2 / 4)
    absent = per_class_scores(confusion(pred * 0, gt * 0, 3), ["bg", "tool", "organ"], 0)
    assert absent["per_class"]["tool"]["dice"] is None and absent["dice_mean"] is None


def test_hd95_takes_both_directed_distances():
    """A dot in the middle of an 11x11 square: the dot is 5 from the square's outline, while
    the outline's corners are sqrt(50) from the dot. The 95th percentile of all 41 surface
    distances is a corner's, whichever mask is the prediction."""
    square = _square((15, 15), (2, 13), (2, 13))
    dot = np.zeros((15, 15), dtype=np.uint8)
    dot[7, 7] = 1
    assert hd95(dot, square) == pytest.approx(math.sqrt(50))
    assert hd95(square, dot) == pytest.approx(math.sqrt(50))
