"""Detection metrics: the release's frame-level scores, localisation F1s and COCO AP.

Every frame is a :class:`FrameDetections` (ground truth and predictions in pixel ``xyxy``).

* Frame level (the release's "F1", docs/release.md#kumc-detection), at ``score >= threshold``:
  a frame with a polyp is a true positive when *any* box passes the threshold, wherever it lies;
  a polyp-free frame with such a box is a false positive. Box positions are never checked.
* ``f1_center``: a kept prediction hits when its centre lies inside a ground-truth box not yet
  matched; predictions are matched in descending score order, each ground truth at most once.
* ``f1_iou50``: the same greedy matching, but a hit needs IoU >= 0.5 (the unmatched ground
  truth with the highest IoU is taken).
* ``ap50`` / ``ap``: COCO average precision (IoU 0.5 and 0.5:0.95), class-aware, from
  pycocotools over all predictions (no score threshold).

The localisation F1s are class-agnostic, like the frame-level metric they correct. Ratios with
a zero denominator are 0 (as ``sklearn``'s ``zero_division=0``).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from sklearn.metrics import confusion_matrix
from torchvision.ops import box_iou

METRIC_KEYS = ("f1_frame", "precision_frame", "recall_frame", "accuracy_frame",
               "specificity_frame", "f1_center", "precision_center", "recall_center",
               "f1_iou50", "precision_iou50", "recall_iou50", "ap50", "ap")


@dataclass
class FrameDetections:
    """Ground truth and predictions of one frame (pixel ``xyxy`` boxes).

    ``gt_boxes`` float ``[n, 4]``, ``gt_labels`` int ``[n]``; ``boxes`` float ``[m, 4]``,
    ``scores`` float ``[m]``, ``labels`` int ``[m]``. Labels start at 1 (0 is background).
    """

    gt_boxes: np.ndarray
    gt_labels: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    width: int = 0
    height: int = 0

    def __post_init__(self) -> None:
        self.gt_boxes = np.asarray(self.gt_boxes, dtype=np.float64).reshape(-1, 4)
        self.gt_labels = np.asarray(self.gt_labels, dtype=np.int64).reshape(-1)
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if len(self.gt_boxes) != len(self.gt_labels):
            raise ValueError(f"{len(self.gt_boxes)} ground-truth boxes but "
                             f"{len(self.gt_labels)} labels")
        if not len(self.boxes) == len(self.scores) == len(self.labels):
            raise ValueError(f"{len(self.boxes)} boxes, {len(self.scores)} scores and "
                             f"{len(self.labels)} labels differ in number")


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


def _f1(precision: float, recall: float) -> float:
    return _ratio(2 * precision * recall, precision + recall)


def frame_level_metrics(frames: Sequence[FrameDetections], threshold: float = 0.5
                        ) -> dict[str, float]:
    """The release's frame-level precision/recall/F1/accuracy/specificity (see module doc)."""
    truth = [int(len(f.gt_boxes) > 0) for f in frames]
    fired = [int(bool((f.scores >= threshold).any())) for f in frames]
    tn, fp, fn, tp = confusion_matrix(truth, fired, labels=[0, 1]).ravel()
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return {"f1_frame": _f1(precision, recall), "precision_frame": precision,
            "recall_frame": recall, "accuracy_frame": _ratio(tp + tn, len(frames)),
            "specificity_frame": _ratio(tn, tn + fp)}


def _centre_hits(boxes: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``[m, n]`` bool: the centre of prediction ``i`` lies inside ground truth ``j``."""
    cx = (boxes[:, 0:1] + boxes[:, 2:3]) / 2
    cy = (boxes[:, 1:2] + boxes[:, 3:4]) / 2
    return ((cx >= gt[None, :, 0]) & (cx <= gt[None, :, 2])
            & (cy >= gt[None, :, 1]) & (cy <= gt[None, :, 3]))


def _iou(boxes: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``[m, n]`` IoU of predictions and ground truths."""
    return box_iou(torch.from_numpy(boxes), torch.from_numpy(gt)).numpy()


def _greedy_matches(frame: FrameDetections, threshold: float,
                    affinity: Callable[[np.ndarray, np.ndarray], np.ndarray],
                    min_affinity: float) -> tuple[int, int, int]:
    """(tp, fp, fn) of one frame: kept predictions by descending score each take the unmatched
    ground truth of highest ``affinity`` when it reaches ``min_affinity``."""
    keep = frame.scores >= threshold
    boxes, scores = frame.boxes[keep], frame.scores[keep]
    n_gt = len(frame.gt_boxes)
    if not len(boxes) or not n_gt:
        return 0, len(boxes), n_gt
    table = affinity(boxes, frame.gt_boxes).astype(np.float64)
    taken = np.zeros(n_gt, dtype=bool)
    tp = 0
    for i in np.argsort(-scores, kind="stable"):
        row = np.where(taken, -np.inf, table[i])
        j = int(np.argmax(row))
        if row[j] >= min_affinity:
            taken[j] = True
            tp += 1
    return tp, len(boxes) - tp, n_gt - tp


def _matching_scores(frames: Sequence[FrameDetections], threshold: float, suffix: str,
                     affinity: Callable[[np.ndarray, np.ndarray], np.ndarray],
                     min_affinity: float) -> dict[str, float]:
    counts = np.array([_greedy_matches(f, threshold, affinity, min_affinity) for f in frames]
                      ).reshape(-1, 3).sum(axis=0)
    tp, fp, fn = (int(c) for c in counts)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return {f"f1_{suffix}": _f1(precision, recall), f"precision_{suffix}": precision,
            f"recall_{suffix}": recall}


def center_metrics(frames: Sequence[FrameDetections], threshold: float = 0.5
                   ) -> dict[str, float]:
    """``f1_center``/``precision_center``/``recall_center`` (centre-in-box matching)."""
    return _matching_scores(frames, threshold, "center",
                            lambda b, g: _centre_hits(b, g).astype(np.float64), 1.0)


def iou_metrics(frames: Sequence[FrameDetections], threshold: float = 0.5,
                iou_threshold: float = 0.5) -> dict[str, float]:
    """``f1_iou50``/``precision_iou50``/``recall_iou50`` (IoU >= ``iou_threshold`` matching)."""
    return _matching_scores(frames, threshold, "iou50", _iou, iou_threshold)


def coco_ground_truth(frames: Sequence[FrameDetections], num_classes: int) -> dict:
    """A COCO ground-truth dict: image ``i`` is ``frames[i]``, categories ``1..num_classes``."""
    images, annotations = [], []
    for image_id, f in enumerate(frames):
        images.append({"id": image_id, "width": f.width, "height": f.height})
        for box, label in zip(f.gt_boxes, f.gt_labels, strict=True):
            x0, y0, x1, y1 = (float(v) for v in box)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": int(label), "bbox": [x0, y0, x1 - x0, y1 - y0],
                                "area": (x1 - x0) * (y1 - y0), "iscrowd": 0})
    categories = [{"id": c, "name": str(c)} for c in range(1, num_classes + 1)]
    return {"images": images, "annotations": annotations, "categories": categories}


def coco_predictions(frames: Sequence[FrameDetections]) -> list[dict]:
    """COCO result records (``image_id`` = frame index, ``bbox`` as ``[x, y, w, h]``)."""
    return [{"image_id": image_id, "category_id": int(label), "score": float(score),
             "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]),
                      float(box[3] - box[1])]}
            for image_id, f in enumerate(frames)
            for box, score, label in zip(f.boxes, f.scores, f.labels, strict=True)]


def coco_ap(frames: Sequence[FrameDetections], num_classes: int) -> dict[str, float]:
    """``ap50`` and ``ap`` (0.5:0.95), class-aware, averaged over classes with ground truth."""
    if not any(len(f.gt_boxes) for f in frames):
        raise ValueError("COCO AP is undefined without any ground-truth box")
    results = coco_predictions(frames)
    if not results:
        return {"ap50": 0.0, "ap": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = coco_ground_truth(frames, num_classes)
        gt.createIndex()
        evaluator = COCOeval(gt, gt.loadRes(results), iouType="bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    ap, ap50 = (max(float(v), 0.0) for v in evaluator.stats[:2])
    return {"ap50": ap50, "ap": ap}


def detection_metrics(frames: Sequence[FrameDetections], num_classes: int = 2,
                      threshold: float = 0.5) -> dict[str, float]:
    """All of :data:`METRIC_KEYS` (fractions in [0, 1]) over ``frames``."""
    if not frames:
        raise ValueError("no frames to evaluate")
    metrics = frame_level_metrics(frames, threshold)
    metrics |= center_metrics(frames, threshold)
    metrics |= iou_metrics(frames, threshold)
    metrics |= coco_ap(frames, num_classes)
    return {k: metrics[k] for k in METRIC_KEYS}


def threshold_metrics(frames: Sequence[FrameDetections], threshold: float) -> dict[str, float]:
    """The thresholded metrics (frame level, centre and IoU matching) at ``threshold``."""
    return (frame_level_metrics(frames, threshold) | center_metrics(frames, threshold)
            | iou_metrics(frames, threshold))


def choose_threshold(frames: Sequence[FrameDetections], default: float = 0.5
                     ) -> tuple[float, float]:
    """(score threshold, its ``f1_center``): the threshold that maximises ``f1_center`` over
    ``frames``. Candidates are every predicted score (a threshold between two scores gives the
    same kept set as the higher one) and ``default``; ties go to the candidate nearest
    ``default``."""
    scores = np.concatenate([f.scores for f in frames]) if frames else np.zeros(0)
    candidates = np.unique(np.append(scores, default))
    f1 = np.array([center_metrics(frames, float(t))["f1_center"] for t in candidates])
    best = np.flatnonzero(f1 >= f1.max() - 1e-12)
    pick = best[np.argmin(np.abs(candidates[best] - default))]
    return float(candidates[pick]), float(f1[pick])
