"""The benchmark scripts keep working as the library changes: their building blocks run at
tiny sizes on the CPU (the figures themselves are not checked)."""

import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(autouse=True)
def benchmarks_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))


@pytest.mark.parametrize(("recipe", "frames", "setting"), [
    ("endofm", 16, "fp32"), ("endofm+lv", 16, "fp32"), ("lv", 32, "bf16+ckpt")])
def test_pretrain_step_rows_run(recipe, frames, setting):
    from pretrain_step import make_step, recipe_config

    precision, *flags = setting.split("+")
    cfg = recipe_config(recipe, frames, precision, "ckpt" in flags, tiny=True)
    step = make_step(cfg, torch.device("cpu"), 1)
    step()


def test_gpu_table_forward_row_runs():
    from gpu_table import forward_row, sizes

    cells = forward_row("bf16", torch.device("cpu"), sizes(dry_run=True))
    assert cells[0].startswith("forward 8x64x64") and "clips/s" in cells[3]
    assert "gpu_table" in sys.modules
