import math

import pytest
import torch
import torch.nn.functional as F

from endofm.ssl.ibot import IBOTPatchLoss, masked_token_weights
from endofm.ssl.sinkhorn import sinkhorn_knopp


def masks():
    # 3 crops of 4 tokens: crop 0 has 1 masked token, crop 1 has 2, crop 2 none
    return torch.tensor([[0, 1, 0, 0], [1, 0, 0, 1], [0, 0, 0, 0]], dtype=torch.bool)


def test_weights_count_each_masked_crop_once():
    torch.testing.assert_close(masked_token_weights(masks()), torch.tensor([1.0, 0.5, 0.5]))


def test_hand_computed_value():
    student = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
    teacher = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]])
    loss = IBOTPatchLoss(2, student_temp=0.5, center_momentum=0.5)
    loss.center.copy_(torch.tensor([[0.5, 0.0]]))

    def softmax(v):
        e = [math.exp(a) for a in v]
        return [a / sum(e) for a in e]

    def ce(t, s):
        target = softmax([(a - c) / 0.25 for a, c in zip(t, [0.5, 0.0], strict=True)])
        p = softmax([a / 0.5 for a in s])
        return -sum(a * math.log(b) for a, b in zip(target, p, strict=True))

    terms = [ce(t, s) for t, s in zip(teacher.tolist(), student.tolist(), strict=True)]
    expected = (terms[0] + (terms[1] + terms[2]) / 2) / 3  # 3 crops, one unmasked
    out = loss(student, teacher, [masks()], teacher_temp=0.25)
    assert out["loss"].item() == pytest.approx(expected, rel=1e-6)
    # the centre moves towards the mean masked teacher output
    torch.testing.assert_close(loss.center, 0.5 * torch.tensor([[0.5, 0.0]])
                               + 0.5 * teacher.mean(dim=0, keepdim=True))


@pytest.mark.parametrize("centering", ["running", "sinkhorn_knopp"])
def test_zero_when_student_agrees_with_teacher(centering):
    torch.manual_seed(0)
    teacher = torch.randn(3, 6)
    loss = IBOTPatchLoss(6, student_temp=0.1, centering=centering)
    targets = loss.teacher_targets(teacher, 0.04)
    agreeing = 0.1 * targets.log()  # log_softmax(agreeing / 0.1) = log targets
    out = loss(agreeing, teacher, [masks()], teacher_temp=0.04)
    assert abs(out["kl"].item()) < 1e-5 and out["loss"].item() > 0
    assert loss(torch.randn(3, 6), teacher, [masks()], 0.04)["kl"].item() > 0.01
    if centering == "sinkhorn_knopp":
        torch.testing.assert_close(targets, sinkhorn_knopp(teacher, 0.04, 3))
        assert torch.equal(loss.center, torch.zeros(1, 6))


def test_masks_of_views_with_different_token_counts():
    student, teacher = torch.randn(3, 4), torch.randn(3, 4)
    loss = IBOTPatchLoss(4)
    split = [masks()[:2], torch.tensor([[0, 0, 0, 0, 0, 0, 0, 0]], dtype=torch.bool)]
    torch.testing.assert_close(loss(student, teacher, split, 0.1)["loss"],
                               IBOTPatchLoss(4)(student, teacher, [masks()], 0.1)["loss"])


def test_one_hot_targets_matched_exactly_give_zero_loss():
    teacher = torch.tensor([[30.0, 0.0], [0.0, 30.0], [30.0, 0.0]])
    student = 100 * F.one_hot(teacher.argmax(dim=1), 2).float()
    out = IBOTPatchLoss(2)(student, teacher, [masks()], 0.01)
    assert out["loss"].item() == pytest.approx(0.0, abs=1e-6)


def test_unknown_centring_is_an_error():
    with pytest.raises(ValueError, match="centering"):
        IBOTPatchLoss(4, centering="none")
