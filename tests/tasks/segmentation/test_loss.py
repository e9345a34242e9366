import pytest
import torch

from endofm.tasks.segmentation.loss import CEDiceLoss, soft_dice_loss


def test_soft_dice_hand_computed():
    # probabilities 1/2 everywhere for 2 classes; target: 1 of 4 pixels is class 1
    logits = torch.zeros(1, 2, 1, 2, 2)
    target = torch.tensor([[[[0, 0], [0, 1]]]])
    d0 = 2 * 1.5 / (2 + 3)
    d1 = 2 * 0.5 / (2 + 1)
    assert soft_dice_loss(logits, target, eps=0.0).item() == pytest.approx(1 - (d0 + d1) / 2)


def test_perfect_prediction_has_low_loss_and_gradients_flow():
    target = torch.randint(0, 2, (2, 2, 8, 8))
    perfect = torch.nn.functional.one_hot(target, 2).movedim(-1, 1).float() * 40 - 20
    loss = CEDiceLoss()
    assert loss(perfect, target).item() < 1e-4
    logits = torch.zeros(2, 2, 2, 8, 8, requires_grad=True)
    value = loss(logits, target)
    value.backward()
    assert value.item() > 0.3 and logits.grad.abs().sum() > 0
