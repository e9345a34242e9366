"""Shared helpers for the pre-training tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from endofm.ssl import pretrain
from endofm.ssl.config import SSLLossConfig
from endofm.ssl.objective import SSLObjective
from endofm.ssl.trainer import PretrainTrainer


def tiny_objective(out_dim: int = 32, **loss: Any) -> SSLObjective:
    """The objective of ``out_dim`` prototypes with the ``loss`` settings given (the rest
    the defaults)."""
    return SSLObjective(out_dim, SSLLossConfig(**loss))


def pretrain_killed_at_step(cfg: Any, videos: Path, output: Path,
                            monkeypatch: pytest.MonkeyPatch, step: int = 3) -> None:
    """``pretrain`` interrupted (KeyboardInterrupt) as step ``step`` starts;
    ``PretrainTrainer`` restored."""
    original = PretrainTrainer.train_step

    def killed(self: PretrainTrainer, views: list) -> dict[str, float]:
        if self.step == step:
            raise KeyboardInterrupt
        return original(self, views)

    monkeypatch.setattr(PretrainTrainer, "train_step", killed)
    with pytest.raises(KeyboardInterrupt):
        pretrain(cfg, videos, output)
    monkeypatch.setattr(PretrainTrainer, "train_step", original)
