"""A tiny fine-tune on the built-in sample CVC data through the shared engine, then
``evaluate`` of the saved model."""

import json

import pytest

from endofm.config import load_config, recipe_path
from endofm.tasks import TASKS
from endofm.tasks.base import task_config_schema
from endofm.tasks.engine import evaluate, fit

pytestmark = pytest.mark.slow

TINY = recipe_path("segmentation", "tiny")


def _task():
    task_cls = TASKS["segmentation"]
    return task_cls(load_config(task_config_schema(task_cls), TINY))


def test_tiny_finetune_reaches_high_dice_and_evaluates(sample_data, tmp_path):
    result = fit(_task(), sample_data["cvc"], tmp_path / "run")
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {"dice", "iou", "hd95"} <= written.keys()
    assert written["dice"] == pytest.approx(result["dice"])
    assert result["dice"] >= 0.8, result
    assert (tmp_path / "run" / "test" / "sheets").is_dir()

    out = tmp_path / "eval"
    again = evaluate(_task(), tmp_path / "run" / "best", sample_data["cvc"], out)
    assert again["dice"] == pytest.approx(result["dice"], abs=1e-3)  # float order only
    names = {p.name for p in (out / "masks").iterdir()}
    assert names == set(written["per_sequence"])
    with pytest.raises(FileNotFoundError, match="not a segmenter checkpoint"):
        _task().load_model(tmp_path / "missing")
