"""The registered task: configs, save/load round trip, a tiny fine-tune on the sample data."""

import json

import pytest
import torch

from endofm.config import load_config, recipe_path
from endofm.tasks import TASKS
from endofm.tasks.base import task_config_schema
from endofm.tasks.detection.metrics import METRIC_KEYS
from endofm.tasks.engine import evaluate, fit

TINY = recipe_path("detection", "tiny")


def tiny_task(*overrides: str):
    cfg = load_config(task_config_schema(TASKS["detection"]), TINY, list(overrides))
    return TASKS["detection"](cfg)


def test_configs_load():
    schema = task_config_schema(TASKS["detection"])
    kumc = load_config(schema, recipe_path("detection", "kumc"), [])
    assert (kumc.model.min_size, kumc.model.max_size, kumc.model.head) == (600, 640, "fcos")
    assert kumc.model.num_classes is None  # sized from the data (KUMC: its two classes)
    assert tiny_task().selection_metric == "ap50"


def test_save_load_round_trip(tmp_path):
    task = tiny_task("model.min_size=64", "model.max_size=64")
    model = task.build_model().eval()
    task.save_model(model, tmp_path / "ckpt")
    other = tiny_task()
    loaded = other.load_model(tmp_path / "ckpt")
    assert other.cfg == tiny_task().cfg  # loading leaves the config alone
    restored = other.saved_config(tmp_path / "ckpt")
    assert restored.model.min_size == 64
    assert restored.model.min_size != other.cfg.model.min_size
    clip = [torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))]
    with torch.no_grad():
        a, b = model(clip)[0], loaded(clip)[0]
    assert torch.equal(a["scores"], b["scores"]) and torch.equal(a["boxes"], b["boxes"])
    with pytest.raises(FileNotFoundError, match="detector checkpoint"):
        task.load_model(tmp_path / "missing")


@pytest.mark.slow
def test_tiny_finetune_detects_polyps(sample_data, tmp_path):
    torch.manual_seed(0)
    task = tiny_task()
    metrics = fit(task, sample_data["kumc"], tmp_path / "run")
    assert set(METRIC_KEYS) <= set(metrics)
    assert all(0.0 <= metrics[k] <= 1.0 for k in METRIC_KEYS)
    assert metrics["ap50"] >= 0.5
    assert metrics["f1_center"] >= 0.7
    out = tmp_path / "eval"
    result = evaluate(tiny_task(), tmp_path / "run" / "best", sample_data["kumc"], out)
    assert result["ap50"] == pytest.approx(metrics["ap50"])
    coco = json.loads((out / "predictions.json").read_text())
    assert coco["predictions"] and {"images", "annotations", "categories"} <= set(coco)
    assert len(list((out / "sheets").glob("*.png"))) == result["num_videos"]
