"""The temporal model: causality, the offline model's use of the future, the losses."""

from __future__ import annotations

import torch

from endofm.tasks.phase.model import PhaseTCN, balanced_weights, phase_loss, smoothing_loss


def outputs(model: PhaseTCN, x: torch.Tensor) -> torch.Tensor:
    logits, tools = model(x)
    return torch.cat([logits.permute(1, 0, 2, 3).flatten(1, 2), tools], dim=1)


def test_causal_prediction_of_the_past_ignores_the_future() -> None:
    torch.manual_seed(0)
    model = PhaseTCN(8, 4, stages=3, layers=4, channels=16, causal=True, num_tools=2).eval()
    x = torch.randn(1, 8, 60)
    changed = x.clone()
    changed[..., 35:] = torch.randn(1, 8, 25) * 3
    a, b = outputs(model, x), outputs(model, changed)
    torch.testing.assert_close(a[..., :35], b[..., :35])
    assert not torch.allclose(a[..., 35:], b[..., 35:])


def test_offline_model_sees_the_future() -> None:
    torch.manual_seed(0)
    model = PhaseTCN(8, 4, stages=2, layers=4, channels=16, causal=False).eval()
    x = torch.randn(1, 8, 60)
    changed = x.clone()
    changed[..., 35:] = torch.randn(1, 8, 25)
    a, b = model(x)[0], model(changed)[0]
    assert not torch.allclose(a[..., 30:35], b[..., 30:35])


def test_losses_by_hand() -> None:
    # two rows, two phases: log-probabilities [log .5, log .5] then [0, -inf-ish]
    logits = torch.tensor([[[0.0, 10.0], [0.0, -10.0]]])  # [B=1, P=2, T=2]
    log_p = torch.log_softmax(logits, dim=1)
    want = ((log_p[:, :, 1] - log_p[:, :, 0]) ** 2).clamp(max=16).mean()
    torch.testing.assert_close(smoothing_loss(logits), want)
    labels = torch.tensor([0, 0])
    ce = torch.nn.functional.cross_entropy(logits[0].t(), labels)
    stacked = logits.unsqueeze(0).repeat(2, 1, 1, 1)  # two identical stages
    torch.testing.assert_close(phase_loss(stacked, labels, 0.15), 2 * (ce + 0.15 * want))


def test_balanced_weights() -> None:
    w = balanced_weights([torch.tensor([0, 0, 0, 1]), torch.tensor([1, 1, 1, 1])], 3)
    # frequencies 3/8, 5/8 (median 1/2); an unseen phase gets 0
    torch.testing.assert_close(w, torch.tensor([0.5 / (3 / 8), 0.5 / (5 / 8), 0.0]))
