"""Phase metrics against values computed by hand on short label sequences."""

from __future__ import annotations

import numpy as np
import pytest

from endofm.tasks.phase.metrics import (
    edit_score,
    relaxed_correct,
    score_videos,
    segment_counts,
    video_metrics,
)

GT_A = np.array([0, 0, 0, 1, 1, 1])
PRED_A = np.array([0, 0, 1, 1, 1, 0])


def test_strict_per_phase_scores() -> None:
    m = video_metrics(GT_A, PRED_A, rate=1.0, num_phases=3, cholec80=False)
    assert m["accuracy"] == pytest.approx(4 / 6)
    # phase 0: truth {0,1,2}, predicted {0,1,5}, union of 4, TP 2
    np.testing.assert_allclose(m["jaccard"][:2], [0.5, 0.5])
    np.testing.assert_allclose(m["precision"][:2], [2 / 3, 2 / 3])
    np.testing.assert_allclose(m["recall"][:2], [2 / 3, 2 / 3])
    assert np.isnan(m["jaccard"][2]) and np.isnan(m["precision"][2])  # absent from the truth
    # relaxed: the boundary rows are forgiven (a 3-row segment is shorter than 10 s at 1/s)
    assert m["relaxed_accuracy"] == 1.0


def test_relaxed_official_indexing_differs_from_corrected() -> None:
    gt = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    pred = np.array([0, 1, 0, 1, 1, 1, 1, 1])
    # 0.2 rows/s: the 10 s boundary is 2 rows. Segment 0's last two rows hold diff [0, +1]:
    # the script applies that mask to the segment's FIRST two rows (forgiving row 1)
    official = relaxed_correct(gt, pred, 0.2, cholec80=False, mode="official")
    corrected = relaxed_correct(gt, pred, 0.2, cholec80=False, mode="corrected")
    assert official.tolist() == [True, True, True, False, True, True, True, True]
    assert corrected.tolist() == [True, False, True, True, True, True, True, True]
    m = video_metrics(gt, pred, 0.2, 2, cholec80=False)
    # phase 0: union rows 0–3, TP rows 0,1,2 → Jaccard 3/4; 2 predicted rows → precision 3/2
    assert m["relaxed_jaccard"][0] == pytest.approx(0.75)
    assert m["relaxed_precision"][0] == pytest.approx(1.5)
    assert m["relaxed_recall"][1] == pytest.approx(5 / 4)


def test_cholec80_transition_rules() -> None:
    gt = np.array([3, 3, 3, 3])  # GallbladderDissection (1-based phase 4)
    pred = np.array([2, 3, 3, 5])  # late by one phase at the start, two phases early at the end
    assert relaxed_correct(gt, pred, 0.2, True, "corrected").tolist() == [True] * 4
    assert relaxed_correct(gt, pred, 0.2, False, "corrected").tolist() == [True, True, True,
                                                                           False]
    assert relaxed_correct(gt, pred, 0.2, True, "official").tolist() == [True, True, True,
                                                                         False]
    late2 = relaxed_correct(np.array([5, 5, 5, 5]), np.array([3, 5, 5, 5]), 0.2, True)
    assert late2.tolist() == [True] * 4  # CleaningCoagulation forgives two phases late
    one_late = relaxed_correct(np.array([1, 1, 1, 1]), np.array([0, 1, 1, 1]), 0.2, True)
    assert one_late.tolist() == [True] * 4  # one phase late: forgiven for every phase
    assert not relaxed_correct(np.array([2, 2, 2, 2]), np.array([0, 2, 2, 2]), 0.2, True)[0]


def test_edit_score_and_segmental_f1() -> None:
    assert edit_score(np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 0, 1, 2, 2])) == \
        pytest.approx(1 - 2 / 5)
    gt = np.array([0] * 4 + [1] * 4)
    pred = np.array([0] + [1] * 7)  # IoUs 1/4 and 4/7
    assert segment_counts(gt, pred, 0.25) == (2, 0, 0)
    assert segment_counts(gt, pred, 0.5) == (1, 1, 1)
    m = video_metrics(gt, pred, 1.0, 2)
    assert (m["f1@10"], m["f1@25"], m["f1@50"]) == (1.0, 1.0, 0.5)


def test_aggregate_over_videos() -> None:
    videos = [("a", GT_A, PRED_A), ("b", np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1]))]
    out = score_videos(videos, 1.0, ("p0", "p1", "p2"), cholec80=False)
    assert out["accuracy"] == pytest.approx(5 / 6)
    assert out["accuracy_std"] == pytest.approx((1 / 3) / np.sqrt(2))  # N − 1
    assert out["jaccard"] == pytest.approx(0.75) and out["jaccard_std"] == 0.0
    assert out["per_phase"]["p2"]["jaccard"] is None  # absent everywhere: left out
    assert out["per_phase"]["p0"]["precision"] == pytest.approx((2 / 3 + 1) / 2)
    assert [r["video"] for r in out["per_video"]] == ["a", "b"]
    assert out["per_video"][0]["jaccard"] == pytest.approx(0.5)


def test_relaxed_values_above_one_are_clipped_before_the_mean() -> None:
    gt = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    pred = np.array([0, 1, 0, 1, 1, 1, 1, 1])
    out = score_videos([("v", gt, pred)], 0.2, ("p0", "p1"), cholec80=False)
    assert out["per_phase"]["p0"]["relaxed_precision"] == 1.0  # 3/2 clipped
    assert out["per_phase"]["p1"]["relaxed_recall"] == 1.0  # 5/4 clipped
