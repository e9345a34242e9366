"""Phase recognition metrics under the Cholec80 / M2CAI conventions and MS-TCN's.

Per video (label sequences of one phase index per row, ``rate`` rows per second):

- ``accuracy``: the fraction of rows whose phase is right;
- per phase present in the video's ground truth: ``precision`` = TP / predicted rows,
  ``recall`` = TP / true rows, ``jaccard`` = TP / rows in either (phases absent from the ground
  truth are NaN, as in the evaluation script);
- each again with the *relaxed boundary* of the M2CAI/Cholec80 evaluation script
  (:func:`relaxed_correct`);
- ``edit``: MS-TCN's segmental edit score, 1 − Levenshtein(segment labels) / max(segments);
- ``f1@k``: MS-TCN's segmental F1 at IoU ≥ k/100.

Over videos (:func:`aggregate`): accuracy is the mean over videos ± its standard deviation over
videos (MATLAB's ``std``: N − 1); per phase, each metric is the NaN-ignoring mean over videos
after clipping values above 1 (the relaxed TP can exceed a phase's rows); the reported
precision/recall/Jaccard are the means of those per-phase values ± their standard deviation
over phases. Phases absent from every video's ground truth are left out of the means (the
script's ``mean`` would return NaN there). F1@k counts TP/FP/FN over all videos, then F1 (as
MS-TCN). Values are fractions in [0, 1] (the script prints percent).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import numpy as np

from endofm.data.phase.labels import segments

RELAXED_S = 10.0  # the script's relaxed boundary, seconds
F1_OVERLAPS = (10, 25, 50)


class RelaxedMode(StrEnum):
    """``official``: the script's own indexing, which applies the early-transition rule's mask
    (computed on a segment's last rows) to the segment's *first* rows (MATLAB logical indexing
    with a shorter mask); ``corrected``: the rule as described, on the last rows."""

    official = "official"
    corrected = "corrected"


def transition_rules(phase: int, cholec80: bool) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The differences ``pred - gt`` forgiven at the start (late transition) and at the end
    (early transition) of a ground-truth segment of ``phase`` (0-based). Cholec80: phases 4 and
    5 (GallbladderDissection, GallbladderPackaging; 1-based 4, 5) forgive −1 at the start and
    +1, +2 at the end; phases 6 and 7 forgive −1, −2 at the start and +1, +2 at the end; every
    other phase (and every phase elsewhere) −1 at the start and +1 at the end."""
    if cholec80 and phase in (3, 4):
        return (-1,), (1, 2)
    if cholec80 and phase in (5, 6):
        return (-1, -2), (1, 2)
    return (-1,), (1,)


def relaxed_correct(gt: np.ndarray, pred: np.ndarray, rate: float, cholec80: bool = True,
                    mode: RelaxedMode | str = RelaxedMode.official) -> np.ndarray:
    """Rows counted correct with the relaxed boundary → bool ``[N]``.

    Within the first ``t = 10 s × rate`` rows of each ground-truth segment (``t`` capped at the
    segment's length) a prediction of the previous phase(s) is forgiven, and within its last
    ``t`` rows one of the next phase(s) (:func:`transition_rules`); ``mode`` picks the
    script's indexing of the second rule (:class:`RelaxedMode`).
    """
    gt, pred = np.asarray(gt, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    diff = pred - gt
    window = max(1, round(RELAXED_S * rate))
    out = diff.copy()
    for phase, start, end in segments(gt):
        cur = diff[start:end].copy()
        t = min(window, len(cur))
        late, early = transition_rules(phase, cholec80)
        head = cur[:t]
        head[np.isin(head, late)] = 0
        mask = np.isin(cur[len(cur) - t:], early)
        if RelaxedMode(mode) == RelaxedMode.official:
            cur[:t][mask] = 0
        else:
            cur[len(cur) - t:][mask] = 0
        out[start:end] = cur
    return out == 0


def _ratio(num: float, den: float) -> float:
    """``num / den`` as MATLAB divides: x/0 is inf (x > 0) or NaN (x = 0)."""
    if den == 0:
        return float("inf") if num > 0 else float("nan")
    return num / den


def phase_scores(gt: np.ndarray, pred: np.ndarray, correct: np.ndarray,
                 num_phases: int) -> dict[str, np.ndarray]:
    """Per phase ``[P]``: precision, recall, Jaccard (TP = rows of the phase's union of
    predicted and true rows that ``correct`` marks); NaN for phases absent from ``gt``."""
    out = {k: np.full(num_phases, np.nan) for k in ("precision", "recall", "jaccard")}
    for p in range(num_phases):
        truth = gt == p
        if not truth.any():
            continue
        predicted = pred == p
        union = truth | predicted
        tp = float(correct[union].sum())
        out["jaccard"][p] = tp / union.sum()
        out["precision"][p] = _ratio(tp, float(predicted.sum()))
        out["recall"][p] = tp / truth.sum()
    return out


def edit_score(gt: np.ndarray, pred: np.ndarray) -> float:
    """MS-TCN's segmental edit score: 1 − Levenshtein(pred segments, gt segments) / max."""
    a = [p for p, _, _ in segments(pred)]
    b = [p for p, _, _ in segments(gt)]
    dist = np.zeros((len(a) + 1, len(b) + 1))
    dist[:, 0] = np.arange(len(a) + 1)
    dist[0, :] = np.arange(len(b) + 1)
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            dist[i, j] = min(dist[i - 1, j] + 1, dist[i, j - 1] + 1,
                             dist[i - 1, j - 1] + (a[i - 1] != b[j - 1]))
    return float(1 - dist[-1, -1] / max(len(a), len(b), 1))


def segment_counts(gt: np.ndarray, pred: np.ndarray, overlap: float) -> tuple[int, int, int]:
    """MS-TCN's (TP, FP, FN) at IoU ≥ ``overlap``: each predicted segment, in order, matches
    the same-phase true segment it overlaps most if that IoU is enough and the true segment is
    not matched yet; otherwise it is a false positive."""
    truth = segments(gt)
    hit = np.zeros(len(truth), dtype=bool)
    tp = fp = 0
    for phase, start, end in segments(pred):
        ious = np.array([(min(end, e) - max(start, s)) / (max(end, e) - min(start, s))
                         if p == phase else 0.0 for p, s, e in truth])
        best = int(ious.argmax())
        if ious[best] >= overlap and not hit[best]:
            tp, hit[best] = tp + 1, True
        else:
            fp += 1
    return tp, fp, int((~hit).sum())


def f1_from_counts(tp: int, fp: int, fn: int) -> float:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def video_metrics(gt: np.ndarray, pred: np.ndarray, rate: float, num_phases: int,
                  cholec80: bool = True, mode: RelaxedMode | str = RelaxedMode.official
                  ) -> dict[str, object]:
    """Every metric of one video (``gt``, ``pred`` int ``[N]`` at ``rate`` rows/s): scalars,
    per-phase arrays (``precision`` …, ``relaxed_precision`` …) and the F1 counts."""
    gt, pred = np.asarray(gt, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth has {len(gt)} rows, prediction {len(pred)}")
    strict = gt == pred
    relaxed = relaxed_correct(gt, pred, rate, cholec80, mode)
    out: dict[str, object] = {"accuracy": float(strict.mean()),
                              "relaxed_accuracy": float(relaxed.mean()),
                              "edit": edit_score(gt, pred)}
    out |= phase_scores(gt, pred, strict, num_phases)
    out |= {f"relaxed_{k}": v for k, v in phase_scores(gt, pred, relaxed, num_phases).items()}
    counts = {k: segment_counts(gt, pred, k / 100) for k in F1_OVERLAPS}
    out["segment_counts"] = counts
    out |= {f"f1@{k}": f1_from_counts(*c) for k, c in counts.items()}
    return out


def sample_std(values: Sequence[float]) -> float:
    """MATLAB's ``std``: N − 1 in the denominator; 0 for one value."""
    values = [v for v in values if not np.isnan(v)]
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        counts = (~np.isnan(values)).sum(axis)
        sums = np.nansum(values, axis)
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def aggregate(per_video: Sequence[dict[str, object]], phases: Sequence[str]
              ) -> dict[str, object]:
    """The dataset's metrics from :func:`video_metrics` of each video (module docstring)."""
    acc = [float(v["accuracy"]) for v in per_video]
    racc = [float(v["relaxed_accuracy"]) for v in per_video]
    out: dict[str, object] = {"accuracy": float(np.mean(acc)), "accuracy_std": sample_std(acc),
                              "relaxed_accuracy": float(np.mean(racc)),
                              "relaxed_accuracy_std": sample_std(racc),
                              "edit": float(np.mean([v["edit"] for v in per_video]))}
    per_phase: dict[str, dict[str, float | None]] = {p: {} for p in phases}
    for prefix in ("", "relaxed_"):
        for name in ("precision", "recall", "jaccard"):
            key = prefix + name
            table = np.minimum(np.stack([np.asarray(v[key]) for v in per_video]), 1.0)
            phase_means = _nanmean(table, 0)
            present = phase_means[~np.isnan(phase_means)]
            out[key] = float(present.mean()) if len(present) else float("nan")
            out[f"{key}_std"] = sample_std(present.tolist())
            for p, value in zip(phases, phase_means, strict=True):
                per_phase[p][key] = None if np.isnan(value) else float(value)
    for k in F1_OVERLAPS:
        totals = np.sum([v["segment_counts"][k] for v in per_video], axis=0)
        out[f"f1@{k}"] = f1_from_counts(*map(int, totals))
    out["per_phase"] = per_phase
    return out


def video_row(name: str, metrics: dict[str, object]) -> dict[str, object]:
    """One row of the per-video table: the scalars and the phase-mean Jaccard (strict and
    relaxed, over the phases in the video's ground truth)."""
    row: dict[str, object] = {"video": name}
    row |= {k: round(float(metrics[k]), 6) for k in ("accuracy", "relaxed_accuracy", "edit")}
    row |= {f"f1@{k}": round(float(metrics[f"f1@{k}"]), 6) for k in F1_OVERLAPS}
    for key in ("jaccard", "relaxed_jaccard"):
        values = np.minimum(np.asarray(metrics[key]), 1.0)
        row[key] = round(float(np.nanmean(values)), 6) if (~np.isnan(values)).any() else None
    return row


def score_videos(videos: Sequence[tuple[str, np.ndarray, np.ndarray]], rate: float | Sequence,
                 phases: Sequence[str], cholec80: bool = True,
                 mode: RelaxedMode | str = RelaxedMode.official) -> dict[str, object]:
    """``metrics.json`` content for ``(name, gt [N], pred [N])`` triples at ``rate`` rows/s
    (one rate, or one per video): :func:`aggregate` plus ``per_video`` rows and the
    conventions used."""
    if not videos:
        raise ValueError("no videos to score")
    rates = [rate] * len(videos) if np.isscalar(rate) else list(rate)
    per_video = [video_metrics(gt, pred, r, len(phases), cholec80, mode)
                 for (_, gt, pred), r in zip(videos, rates, strict=True)]
    out = aggregate(per_video, phases)
    out["per_video"] = [video_row(name, m) for (name, _, _), m in zip(videos, per_video,
                                                                       strict=True)]
    out["conventions"] = {"relaxed_boundary_s": RELAXED_S, "relaxed_mode": str(mode),
                          "cholec80_transition_rules": cholec80,
                          "std": "accuracy: over videos; precision/recall/jaccard: over "
                                 "phases (N-1)",
                          "f1": "TP/FP/FN summed over videos (MS-TCN)"}
    return json_safe(out)


def json_safe(value: object) -> object:
    """``value`` with every NaN float replaced by ``None`` (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and np.isnan(value):
        return None
    return value
