import random

import numpy as np
import torch

from endofm.utils.logging import MetricLogger, plot_curves, read_jsonl
from endofm.utils.seed import get_rng_state, seed_everything, set_rng_state


def test_rng_state_round_trip_reproduces_draws():
    seed_everything(3)
    state = get_rng_state()
    first = (random.random(), np.random.rand(), torch.rand(2))
    set_rng_state(state)
    second = (random.random(), np.random.rand(), torch.rand(2))
    assert first[0] == second[0] and first[1] == second[1]
    assert torch.equal(first[2], second[2])


def test_metric_logger_writes_jsonl_tensorboard_and_plot(tmp_path):
    logger = MetricLogger(tmp_path)
    for step in range(3):
        logger.log({"loss": 1.0 / (step + 1), "phase": "train"}, step=step)
    logger.close()
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert rows[2]["loss"] == 1.0 / 3
    assert any((tmp_path / "tensorboard").iterdir())
    png = plot_curves(rows, ["loss"], tmp_path / "loss.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
