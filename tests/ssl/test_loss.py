import math
from pathlib import Path

import numpy as np
import pytest
import torch

from endofm.ssl import STLoss, view_pairs

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "endofm_reference_tiny"


def test_matches_release_loss_fixture():
    ref = np.load(ASSETS / "loss_reference.npz")
    b = int(ref["batch_size"])
    student = list(torch.from_numpy(ref["student_output"]).split(b))
    teacher = list(torch.from_numpy(ref["teacher_output"]).split(b))
    loss = STLoss(student[0].shape[1], float(ref["student_temp"]), float(ref["center_momentum"]))
    loss.center.copy_(torch.from_numpy(ref["center_before"]))
    out = loss(student, teacher, float(ref["teacher_temp"]))
    assert out["loss"].item() == pytest.approx(float(ref["loss"]), rel=1e-5)
    torch.testing.assert_close(loss.center, torch.from_numpy(ref["center_after"]))
    # the release's mean over 18 pairs = (16 L_cv + 2 L_dm) / 18
    combined = (16 * out["l_cv"] + 2 * out["l_dm"]) / 18
    assert combined.item() == pytest.approx(out["loss"].item(), rel=1e-6)


def test_pairs_exclude_same_view_and_split_cv_dm():
    cv, dm = view_pairs(2, 10)
    assert len(cv) == 16 and len(dm) == 2
    assert dm == [(0, 1), (1, 0)]
    assert all(s >= 2 for _, s in cv)
    with pytest.raises(ValueError, match="no view pairs"):
        view_pairs(1, 1)
    cv_same, same = view_pairs(2, 10, "same")  # EndoFM-LV's global term
    assert cv_same == cv and same == [(0, 0), (1, 1)]
    with pytest.raises(ValueError, match="global_pairing"):
        STLoss(4, global_pairing="both")


def test_hand_computed_value_with_centre_and_temperatures():
    # 2 global + 1 local view, batch 1, K = 2
    teacher = [torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])]
    student = [torch.tensor([[0.0, 0.0]]), torch.tensor([[0.2, 0.0]]), torch.tensor([[0.0, 0.1]])]
    loss = STLoss(2, student_temp=0.5, center_momentum=0.5, combine="sum")
    loss.center.copy_(torch.tensor([[0.5, 0.0]]))

    def softmax(v):
        e = [math.exp(x) for x in v]
        return [x / sum(e) for x in e]

    t0 = softmax([(1 - 0.5) / 0.25, 0 / 0.25])  # teacher temp 0.25
    t1 = softmax([(0 - 0.5) / 0.25, 1 / 0.25])

    def ce(t, s):
        p = softmax([x / 0.5 for x in s])
        return -sum(a * math.log(b) for a, b in zip(t, p, strict=True))

    l_dm = (ce(t0, [0.2, 0.0]) + ce(t1, [0.0, 0.0])) / 2
    l_cv = (ce(t0, [0.0, 0.1]) + ce(t1, [0.0, 0.1])) / 2
    out = loss(student, teacher, 0.25)
    assert out["l_dm"].item() == pytest.approx(l_dm, rel=1e-6)
    assert out["l_cv"].item() == pytest.approx(l_cv, rel=1e-6)
    assert out["loss"].item() == pytest.approx(l_cv + l_dm, rel=1e-6)
    torch.testing.assert_close(loss.center, torch.tensor([[0.5, 0.25]]))


def test_unknown_combination_is_an_error():
    with pytest.raises(ValueError, match="combine"):
        STLoss(4, combine="max")
