import math

import pytest
import torch

from endofm.ssl.koleo import koleo_loss


def test_matches_hand_computation_on_four_points():
    # directions 0°, 90°, 180°, 45° (lengths differ: the loss normalises them)
    x = torch.tensor([[2.0, 0.0], [0.0, 3.0], [-0.5, 0.0], [1.0, 1.0]], requires_grad=True)
    near = 2 * math.sin(math.pi / 8)  # chord of 45°: 0° and 90° both have 45° as neighbour
    expected = -(3 * math.log(near) + math.log(math.sqrt(2))) / 4  # 180°'s nearest is 90°
    loss = koleo_loss(x)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_spread_points_score_lower_than_clustered_ones():
    spread = torch.eye(4)
    clustered = torch.eye(4) * 0.1 + 1.0
    assert koleo_loss(spread) < koleo_loss(clustered)


def test_needs_two_samples():
    with pytest.raises(ValueError, match="at least 2"):
        koleo_loss(torch.randn(1, 8))
