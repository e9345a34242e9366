"""Segmentation metrics: Dice, IoU and HD95 on binary masks of any dimensionality.

The release's Dice is computed per sequence with the whole sequence as one volume
(``[T, H, W]``) and then averaged over sequences; ``sequence_metrics`` gives that plus the
per-frame mean.

Empty masks (no foreground pixel) are defined as follows:

- Dice / IoU: both empty → 1.0 (perfect agreement); exactly one empty → 0.0.
- HD95: both empty → 0.0; exactly one empty → the largest distance inside the array
  (its diagonal, ``sqrt(sum((s - 1)^2))`` over the shape), so that averages stay finite and a
  missed or hallucinated polyp costs the most.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def _as_bool(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred).astype(bool), np.asarray(gt).astype(bool)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground truth {gt.shape}")
    return pred, gt


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice ``2|P∩G| / (|P| + |G|)`` of two binary arrays of equal shape (1.0 if both empty)."""
    pred, gt = _as_bool(pred, gt)
    total = int(pred.sum()) + int(gt.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(pred, gt).sum()) / total


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Intersection over union of two binary arrays of equal shape (1.0 if both empty)."""
    pred, gt = _as_bool(pred, gt)
    union = int(np.logical_or(pred, gt).sum())
    if union == 0:
        return 1.0
    return int(np.logical_and(pred, gt).sum()) / union


def _surface(mask: np.ndarray) -> np.ndarray:
    """Foreground elements with at least one face-connected background neighbour."""
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure=structure, border_value=0)


def hd95(pred: np.ndarray, gt: np.ndarray) -> float:
    """95th percentile of the symmetric surface distances (pixel units, unit spacing).

    Works on 2-D frames ``[H, W]`` and volumes ``[T, H, W]``; see the module docstring for
    the empty-mask cases.
    """
    pred, gt = _as_bool(pred, gt)
    has_pred, has_gt = bool(pred.any()), bool(gt.any())
    if not has_pred and not has_gt:
        return 0.0
    if has_pred != has_gt:
        return float(np.sqrt(sum((s - 1) ** 2 for s in pred.shape)))
    surf_p, surf_g = _surface(pred), _surface(gt)
    to_g = ndimage.distance_transform_edt(~surf_g)[surf_p]
    to_p = ndimage.distance_transform_edt(~surf_p)[surf_g]
    return float(np.percentile(np.concatenate([to_g, to_p]), 95))


def sequence_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Metrics of one sequence, ``pred``/``gt`` binary ``[T, H, W]``.

    ``dice``, ``iou``, ``hd95``: the whole sequence as one volume (the release's definition);
    ``dice_frame``, ``iou_frame``, ``hd95_frame``: the mean over frames of per-frame values.
    """
    pred, gt = _as_bool(pred, gt)
    if pred.ndim != 3:
        raise ValueError(f"expected [T, H, W] masks, got shape {pred.shape}")
    frames = list(zip(pred, gt, strict=True))
    return {
        "dice": dice(pred, gt),
        "iou": iou(pred, gt),
        "hd95": hd95(pred, gt),
        "dice_frame": float(np.mean([dice(p, g) for p, g in frames])),
        "iou_frame": float(np.mean([iou(p, g) for p, g in frames])),
        "hd95_frame": float(np.mean([hd95(p, g) for p, g in frames])),
    }


def summarize(per_sequence: dict[str, dict[str, float]]) -> dict[str, float]:
    """Average each metric over sequences (each sequence counts once)."""
    if not per_sequence:
        raise ValueError("no sequences were evaluated")
    keys = next(iter(per_sequence.values())).keys()
    return {k: float(np.mean([m[k] for m in per_sequence.values()])) for k in keys}


def confusion(pred: np.ndarray, gt: np.ndarray, num_classes: int) -> np.ndarray:
    """``int64 [C, C]`` pixel counts (rows: ground truth, columns: prediction) of class-index
    arrays of equal shape; ground-truth pixels outside ``[0, C)`` (ignored) are not counted."""
    pred, gt = np.asarray(pred).ravel(), np.asarray(gt).ravel()
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground truth {gt.shape}")
    keep = gt < num_classes
    flat = gt[keep].astype(np.int64) * num_classes + pred[keep].astype(np.int64)
    return np.bincount(flat, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def per_class_scores(counts: np.ndarray, names: list[str], background: int | None
                     ) -> dict:
    """Dice and IoU per class of a pixel confusion matrix ``[C, C]`` (all pixels of a split
    together) and their means over the foreground classes (every class but ``background``)
    that occur in the ground truth or the prediction (a class in neither has no score:
    ``None``).

    Returns ``{"dice_mean", "iou_mean", "per_class": {name: {"dice", "iou", "pixels"}}}``
    (``pixels``: ground-truth pixels of the class).
    """
    tp = np.diag(counts).astype(np.float64)
    fp, fn = counts.sum(0) - tp, counts.sum(1) - tp
    per_class, dices, ious = {}, [], []
    for c, name in enumerate(names):
        union = tp[c] + fp[c] + fn[c]
        scores = {"dice": None, "iou": None, "pixels": int(counts[c].sum())}
        if union > 0:
            scores["dice"], scores["iou"] = 2 * tp[c] / (union + tp[c]), tp[c] / union
            if c != background:
                dices.append(scores["dice"])
                ious.append(scores["iou"])
        per_class[name] = scores
    return {"dice_mean": float(np.mean(dices)) if dices else None,
            "iou_mean": float(np.mean(ious)) if ious else None, "per_class": per_class}
