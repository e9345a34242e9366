"""Collapse diagnostics: hand-computed statistics, the detector firing on a constant-output
model and staying silent on a healthy one."""

import math
import warnings

import pytest
import torch
from torch import nn

from endofm.ssl.diagnostics import (
    CollapseConfig,
    CollapseMonitor,
    CollapseWarning,
    effective_prototypes,
    embedding_std,
)
from endofm.ssl.head import DINOHead
from endofm.ssl.loss import STLoss

K, D = 64, 16


def test_statistics_match_hand_computation():
    # argmax prototypes [0, 0, 1, 2] → frequencies (1/2, 1/4, 1/4): exp(H) = 2^1.5
    outputs = [torch.tensor([[5.0, 0, 0], [4.0, 1, 0]]), torch.tensor([[0, 3.0, 0], [0, 0, 2.0]])]
    assert effective_prototypes(outputs, torch.zeros(1, 3)) == pytest.approx(2 ** 1.5)
    # the centre is subtracted first: it moves every argmax to prototype 2
    assert effective_prototypes(outputs, torch.tensor([[9.0, 9.0, 0.0]])) == pytest.approx(1.0)
    # two orthogonal unit rows: per-dimension std (unbiased) 1/sqrt(2); × sqrt(D=2) → 1
    scaled, raw = embedding_std(torch.tensor([[3.0, 0.0], [0.0, 0.5]]))
    assert raw == pytest.approx(1 / math.sqrt(2)) and scaled == pytest.approx(1.0)
    assert embedding_std(torch.ones(5, 4))[0] == pytest.approx(0.0)


class ConstantBackbone(nn.Module):
    """Ignores its input: the same embedding for every clip."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Parameter(torch.randn(D))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding.expand(len(x), D)


def run(backbone: nn.Module, steps: int, cfg: CollapseConfig) -> tuple[list[dict], list]:
    """Teacher-side diagnostics of ``steps`` batches of 8 clips × 2 global views."""
    torch.manual_seed(0)
    head, loss = DINOHead(D, K, 32, 8), STLoss(K)
    monitor = CollapseMonitor(backbone, K, cfg)
    records, messages = [], []
    for step in range(steps):
        clips = torch.randn(8, D)
        views = [clips + 0.05 * torch.randn(8, D) for _ in range(2)]
        with monitor.watch(), torch.no_grad():
            teacher = [head(backbone(v)) for v in views]
        student = [t + 0.1 * torch.randn_like(t) for t in teacher]
        monitor.observe(teacher, loss.center)
        records.append(monitor.stats(loss(student, teacher, 0.04)))
        messages.append(monitor.check(records[-1], step))
    return records, messages


def test_detector_fires_on_a_constant_output_model():
    cfg = CollapseConfig(patience=5)
    with pytest.warns(CollapseWarning, match="collapsed"):
        records, messages = run(ConstantBackbone(), 40, cfg)
    fired = [i for i, m in enumerate(messages) if m]
    assert len(fired) == 1  # once
    assert records[-1]["embedding_std"] == pytest.approx(0.0, abs=1e-6)
    assert records[-1]["effective_prototypes"] == 1.0
    # the centre catches up with the constant output: the targets become uniform
    assert records[-1]["entropy_ratio"] > 0.99
    # the entropy criterion alone also fires (embedding floor disabled)
    with pytest.warns(CollapseWarning, match="entropy"):
        _, messages = run(ConstantBackbone(), 40, CollapseConfig(patience=5,
                                                                 min_embedding_std=-1))
    assert sum(bool(m) for m in messages) == 1


def test_detector_silent_on_a_healthy_model():
    with warnings.catch_warnings():
        warnings.simplefilter("error", CollapseWarning)
        records, messages = run(nn.Identity(), 40, CollapseConfig(patience=5))
    assert not any(messages)
    assert all(r["entropy_ratio"] < 0.9 for r in records)
    assert all(r["embedding_std"] > 0.5 for r in records)
    assert records[-1]["effective_prototypes"] > 5
