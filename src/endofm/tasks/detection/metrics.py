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
    crowd_boxes: np.ndarray | None = None  # COCO iscrowd regions [k, 4]: only AP counts them
    crowd_labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.crowd_boxes = np.asarray(self.crowd_boxes if self.crowd_boxes is not None
                                      else np.zeros((0, 4)), dtype=np.float64).reshape(-1, 4)
        self.crowd_labels = np.asarray(self.crowd_labels if self.crowd_labels is not None
                                       else np.zeros(0), dtype=np.int64).reshape(-1)
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


def category_ids(num_classes: int, ids: Sequence[int] | None) -> list[int]:
    """The dataset's category id of each label ``1..num_classes`` (default: the label)."""
    return list(range(1, num_classes + 1)) if ids is None else [int(i) for i in ids]


def _box_record(box: np.ndarray) -> list[float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    return [x0, y0, x1 - x0, y1 - y0]


def coco_ground_truth(frames: Sequence[FrameDetections], num_classes: int,
                      ids: Sequence[int] | None = None,
                      names: Sequence[str] | None = None) -> dict:
    """A COCO ground-truth dict: image ``i`` is ``frames[i]``; label ``l`` is category
    ``ids[l - 1]`` (default ``l``) named ``names[l - 1]``; crowd regions have ``iscrowd=1``."""
    cats = category_ids(num_classes, ids)
    images, annotations = [], []
    for image_id, f in enumerate(frames):
        images.append({"id": image_id, "width": f.width, "height": f.height})
        regions = [(b, lab, 0) for b, lab in zip(f.gt_boxes, f.gt_labels, strict=True)]
        regions += [(b, lab, 1) for b, lab in zip(f.crowd_boxes, f.crowd_labels, strict=True)]
        for box, label, crowd in regions:
            bbox = _box_record(box)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": cats[int(label) - 1], "bbox": bbox,
                                "area": bbox[2] * bbox[3], "iscrowd": crowd})
    categories = [{"id": c, "name": str(c) if names is None else names[k]}
                  for k, c in enumerate(cats)]
    return {"images": images, "annotations": annotations, "categories": categories}


def coco_predictions(frames: Sequence[FrameDetections],
                     ids: Sequence[int] | None = None) -> list[dict]:
    """COCO result records (``image_id`` = frame index, ``bbox`` as ``[x, y, w, h]``,
    ``category_id`` the dataset's id of the label)."""
    cats = None if ids is None else [int(i) for i in ids]
    return [{"image_id": image_id,
             "category_id": int(label) if cats is None else cats[int(label) - 1],
             "score": float(score), "bbox": _box_record(box)}
            for image_id, f in enumerate(frames)
            for box, score, label in zip(f.boxes, f.scores, f.labels, strict=True)]


def coco_ap(frames: Sequence[FrameDetections], num_classes: int,
            ids: Sequence[int] | None = None) -> dict[str, float]:
    """``ap50`` and ``ap`` (0.5:0.95), class-aware, averaged over classes with ground truth."""
    result = coco_ap_per_class(frames, num_classes, ids)
    return {"ap50": result["ap50"], "ap": result["ap"]}


def coco_ap_per_class(frames: Sequence[FrameDetections], num_classes: int,
                      ids: Sequence[int] | None = None) -> dict:
    """:func:`coco_ap` and ``per_label``: ``{label: (ap, ap50)}`` from pycocotools' precision
    table (``None`` for a class without ground truth)."""
    if not any(len(f.gt_boxes) for f in frames):
        raise ValueError("COCO AP is undefined without any ground-truth box")
    results = coco_predictions(frames, ids)
    if not results:
        return {"ap50": 0.0, "ap": 0.0,
                "per_label": {label: (0.0, 0.0) if _has_gt(frames, label) else (None, None)
                              for label in range(1, num_classes + 1)}}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = coco_ground_truth(frames, num_classes, ids)
        gt.createIndex()
        evaluator = COCOeval(gt, gt.loadRes(results), iouType="bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    ap, ap50 = (max(float(v), 0.0) for v in evaluator.stats[:2])
    # precision [iou thresholds, recall points, categories, area ranges, max detections]
    precision = evaluator.eval["precision"][:, :, :, 0, -1]
    per_label = {}
    for k in range(num_classes):
        table = precision[:, :, k]
        valid, first = table[table > -1], table[0][table[0] > -1]
        per_label[k + 1] = ((float(valid.mean()), float(first.mean())) if valid.size
                            else (None, None))
    return {"ap50": ap50, "ap": ap, "per_label": per_label}


def _has_gt(frames: Sequence[FrameDetections], label: int) -> bool:
    return any((f.gt_labels == label).any() for f in frames)


def of_label(frames: Sequence[FrameDetections], label: int) -> list[FrameDetections]:
    """The frames with only the ground truth and predictions of one class."""
    return [FrameDetections(f.gt_boxes[f.gt_labels == label], f.gt_labels[f.gt_labels == label],
                            f.boxes[f.labels == label], f.scores[f.labels == label],
                            f.labels[f.labels == label], f.width, f.height) for f in frames]


def detection_metrics(frames: Sequence[FrameDetections], num_classes: int = 2,
                      threshold: float = 0.5, names: Sequence[str] | None = None,
                      ids: Sequence[int] | None = None) -> dict:
    """All of :data:`METRIC_KEYS` (fractions in [0, 1]) over ``frames``, and ``per_class``:
    for each class (by name; ``names`` default ``"1"``…) its COCO ``ap`` / ``ap50``, its
    class-aware frame-level and centre-hit F1 / precision / recall at ``threshold`` (a frame
    or box of another class is neither a hit nor a false positive) and its ``gt_boxes``."""
    if not frames:
        raise ValueError("no frames to evaluate")
    metrics = frame_level_metrics(frames, threshold)
    metrics |= center_metrics(frames, threshold)
    metrics |= iou_metrics(frames, threshold)
    coco = coco_ap_per_class(frames, num_classes, ids)
    metrics |= coco
    names = [str(c) for c in range(1, num_classes + 1)] if names is None else list(names)
    per_class = {}
    for label, name in enumerate(names, start=1):
        own = of_label(frames, label)
        scores = frame_level_metrics(own, threshold) | center_metrics(own, threshold)
        ap, ap50 = coco["per_label"][label]
        per_class[name] = {"ap": ap, "ap50": ap50,
                           **{k: scores[k] for k in ("f1_frame", "precision_frame",
                                                     "recall_frame", "f1_center",
                                                     "precision_center", "recall_center")},
                           "gt_boxes": int(sum(len(f.gt_boxes) for f in own))}
    return {k: metrics[k] for k in METRIC_KEYS} | {"per_class": per_class,
                                                    "class_names": names}


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
