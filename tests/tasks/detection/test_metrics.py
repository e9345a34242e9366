"""Every detection metric against hand-computed values on constructed boxes."""

import numpy as np
import pytest

from endofm.tasks.detection.metrics import (
    METRIC_KEYS,
    FrameDetections,
    center_metrics,
    coco_ap,
    detection_metrics,
    frame_level_metrics,
    iou_metrics,
)

BOX = [0.0, 0.0, 10.0, 10.0]


def frame(gt=(), gt_labels=(), boxes=(), scores=(), labels=()) -> FrameDetections:
    return FrameDetections(np.array(gt), np.array(gt_labels), np.array(boxes),
                           np.array(scores), np.array(labels), width=64, height=64)


def wrong_place() -> FrameDetections:
    """A polyp at the top left; a confident box far away at the bottom right."""
    return frame([BOX], [1], [[50, 50, 60, 60]], [0.9], [1])


def mixed_frames() -> list[FrameDetections]:
    return [
        wrong_place(),                                         # frame TP; loc FP + FN
        frame([BOX], [2], [[1, 1, 11, 11]], [0.8], [2]),       # IoU 81/119, centre in: TP
        frame(boxes=[[0, 0, 5, 5]], scores=[0.7], labels=[1]),  # negative frame, fires: FP
        frame(boxes=[[0, 0, 5, 5]], scores=[0.3], labels=[1]),  # below 0.5: TN
        frame([[20, 20, 40, 40]], [1], [[10, 10, 30, 30]], [0.6], [1]),  # centre on edge, IoU 1/7
        frame([BOX], [1]),                                     # missed: FN
    ]


def test_wrong_place_counts_for_frame_f1_but_not_for_localisation():
    metrics = detection_metrics([wrong_place()])
    assert metrics["f1_frame"] == 1.0
    assert metrics["f1_center"] == 0.0
    assert metrics["f1_iou50"] == 0.0
    assert metrics["ap50"] == 0.0


def test_frame_level_hand_computed():
    # truth 1 1 0 0 1 1, fired 1 1 1 0 1 0 -> tp 3, fp 1, tn 1, fn 1
    m = frame_level_metrics(mixed_frames())
    assert m["precision_frame"] == pytest.approx(3 / 4)
    assert m["recall_frame"] == pytest.approx(3 / 4)
    assert m["f1_frame"] == pytest.approx(3 / 4)
    assert m["accuracy_frame"] == pytest.approx(4 / 6)
    assert m["specificity_frame"] == pytest.approx(1 / 2)


def test_center_hand_computed():
    # tp: frames 2 and 5; fp: frames 1 and 3; fn: frames 1 and 6
    m = center_metrics(mixed_frames())
    assert (m["precision_center"], m["recall_center"], m["f1_center"]) == (0.5, 0.5, 0.5)


def test_iou50_hand_computed():
    # tp: frame 2; fp: frames 1, 3, 5; fn: frames 1, 5, 6
    m = iou_metrics(mixed_frames())
    assert (m["precision_iou50"], m["recall_iou50"], m["f1_iou50"]) == (0.25, 0.25, 0.25)


def test_each_ground_truth_matched_once():
    two_hits = frame([BOX], [1], [[2, 2, 8, 8], [1, 1, 9, 9]], [0.9, 0.8], [1, 1])
    for m, key in ((center_metrics([two_hits]), "center"), (iou_metrics([two_hits]), "iou50")):
        assert m[f"precision_{key}"] == 0.5
        assert m[f"recall_{key}"] == 1.0
        assert m[f"f1_{key}"] == pytest.approx(2 / 3)


def test_iou_matching_prefers_higher_score_and_best_overlap():
    gts = [[0, 0, 10, 10], [20, 0, 30, 10]]
    # the best-scoring box overlaps the second ground truth exactly; the other the first
    f = frame(gts, [1, 1], [[20, 0, 30, 10], [0, 0, 10, 11]], [0.9, 0.6], [1, 1])
    assert iou_metrics([f])["f1_iou50"] == 1.0


def test_ap_perfect_predictions():
    frames = [frame([BOX], [1], [BOX], [0.9], [1]),
              frame([[5, 5, 25, 30]], [2], [[5, 5, 25, 30]], [0.8], [2]), frame()]
    assert coco_ap(frames, num_classes=2) == pytest.approx({"ap50": 1.0, "ap": 1.0})


def test_ap_one_false_positive_ranked_first():
    # ranks: FP (p 0), TP (r .5, p .5), TP (r 1, p 2/3) -> interpolated precision 2/3 everywhere
    frames = [frame([BOX], [1], [[40, 40, 50, 50], BOX], [0.9, 0.8], [1, 1]),
              frame([BOX], [1], [BOX], [0.7], [1])]
    ap = coco_ap(frames, num_classes=2)
    assert ap["ap50"] == pytest.approx(2 / 3)
    assert ap["ap"] == pytest.approx(2 / 3)


def test_ap_is_class_aware():
    frames = [frame([BOX], [1], [BOX], [0.9], [2])]
    assert coco_ap(frames, num_classes=2) == pytest.approx({"ap50": 0.0, "ap": 0.0})


def test_ap_between_iou_thresholds():
    # IoU 81/119 = 0.68: a hit for IoU thresholds 0.50..0.65 (4 of 10)
    frames = [frame([BOX], [1], [[1, 1, 11, 11]], [0.9], [1])]
    ap = coco_ap(frames, num_classes=2)
    assert ap["ap50"] == pytest.approx(1.0)
    assert ap["ap"] == pytest.approx(0.4)


def test_all_keys_are_fractions():
    metrics = detection_metrics(mixed_frames())
    assert tuple(metrics)[:len(METRIC_KEYS)] == METRIC_KEYS
    assert all(0.0 <= metrics[k] <= 1.0 for k in METRIC_KEYS)
    assert set(metrics) - set(METRIC_KEYS) == {"per_class", "class_names"}


def test_bad_input_is_an_error():
    with pytest.raises(ValueError, match="labels"):
        frame([BOX], [1, 2])
    with pytest.raises(ValueError, match="no frames"):
        detection_metrics([])
    with pytest.raises(ValueError, match="ground-truth"):
        coco_ap([frame(boxes=[BOX], scores=[0.9], labels=[1])], num_classes=2)


def test_iou_match_needs_half_overlap():
    # a box covering 5 of the ground truth's 10 rows has IoU 50/100 = 0.5: a hit; covering 4
    # rows, IoU 0.4: a false positive and a missed polyp
    half = frame([BOX], [1], [[0, 0, 10, 5]], [0.9], [1])
    less = frame([BOX], [1], [[0, 0, 10, 4]], [0.9], [1])
    assert iou_metrics([half])["f1_iou50"] == 1.0
    assert iou_metrics([less])["f1_iou50"] == 0.0
    assert detection_metrics([half, less])["precision_iou50"] == 0.5


@pytest.mark.parametrize(("centre", "hit"), [
    ((40.0, 30.0), True),   # on the right edge
    ((30.0, 40.0), True),   # on the bottom edge
    ((40.0, 40.0), True),   # the bottom-right corner
    ((20.0, 30.0), True),   # on the left edge
    ((30.0, 20.0), True),   # on the top edge
    ((40.5, 30.0), False),  # just right of the box
    ((30.0, 40.5), False),  # just below it
])
def test_a_centre_on_any_edge_of_the_box_is_inside(centre, hit):
    """The ground-truth box is closed: a centre on its right or bottom edge hits, as one on
    its left or top edge does."""
    cx, cy = centre
    prediction = [cx - 4, cy - 4, cx + 4, cy + 4]
    m = center_metrics([frame([[20, 20, 40, 40]], [1], [prediction], [0.9], [1])])
    assert m["f1_center"] == (1.0 if hit else 0.0)


def test_per_category_ap_and_centre_hits_with_the_datasets_ids():
    from endofm.tasks.detection.metrics import coco_ap_per_class, coco_ground_truth

    # class 1 found with one false positive ranked first (AP 2/3); class 2 perfect; class 3
    # has no ground truth
    frames = [frame([BOX], [1], [[40, 40, 50, 50], BOX], [0.9, 0.8], [1, 1]),
              frame([BOX], [1], [BOX], [0.7], [1]),
              frame([[5, 5, 25, 30]], [2], [[5, 5, 25, 30]], [0.8], [2])]
    ids = [7, 11, 40]  # the dataset's own category ids
    result = coco_ap_per_class(frames, 3, ids)
    assert result["per_label"][1] == pytest.approx((2 / 3, 2 / 3))
    assert result["per_label"][2] == pytest.approx((1.0, 1.0))
    assert result["per_label"][3] == (None, None)
    m = detection_metrics(frames, 3, 0.5, ["tool", "polyp", "gauze"], ids)
    assert m["per_class"]["tool"]["ap50"] == pytest.approx(2 / 3)
    assert m["per_class"]["tool"]["precision_center"] == pytest.approx(2 / 3)
    assert m["per_class"]["polyp"]["f1_center"] == 1.0 and m["per_class"]["gauze"]["ap"] is None
    gt = coco_ground_truth(frames, 3, ids, ["tool", "polyp", "gauze"])
    assert gt["categories"] == [{"id": 7, "name": "tool"}, {"id": 11, "name": "polyp"},
                                {"id": 40, "name": "gauze"}]
    assert {a["category_id"] for a in gt["annotations"]} == {7, 11}


def test_a_detection_on_a_crowd_region_is_no_false_positive_for_ap():
    crowd = FrameDetections(np.array([BOX]), [1], [[40, 40, 60, 60], BOX], [0.9, 0.8], [1, 1],
                            crowd_boxes=[[38, 38, 62, 62]], crowd_labels=[1])
    plain = FrameDetections(np.array([BOX]), [1], [[40, 40, 60, 60], BOX], [0.9, 0.8], [1, 1])
    assert coco_ap([crowd], 1)["ap50"] == pytest.approx(1.0)
    assert coco_ap([plain], 1)["ap50"] < 1.0
