"""Shared helpers for the engine tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from endofm.tasks.base import Task
from endofm.tasks.engine import Trainer, fit


def fit_killed_in_epoch(make_task: Callable[[], Task], output: Path,
                        monkeypatch: pytest.MonkeyPatch, epoch: int = 2) -> None:
    """``fit`` interrupted (KeyboardInterrupt) as epoch ``epoch`` starts; ``Trainer`` restored."""
    original = Trainer.train_epoch

    def killed(self: Trainer) -> float:
        if self.epoch == epoch:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "train_epoch", killed)
    with pytest.raises(KeyboardInterrupt):
        fit(make_task(), "root", output)
    monkeypatch.setattr(Trainer, "train_epoch", original)
