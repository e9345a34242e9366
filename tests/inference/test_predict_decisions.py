"""Decisions of ``endofm predict`` at their boundaries, read from what the command writes: a
classification score exactly at ``--threshold`` is positive (``>=``), and detection without
``--threshold`` counts boxes at the model's stored operating threshold."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from endofm.cli.main import main


def predict(task: str, ckpt: Path, video: Path, out: Path, *extra: str) -> dict:
    """Run ``endofm predict`` on one video; returns ``run.json``."""
    assert main(["predict", task, "--checkpoint", str(ckpt), str(video), "--output", str(out),
                 "--workers", "0", "--device", "cpu", "--precision", "fp32", "--quiet",
                 "--frame-step", "4", *extra]) == 0
    return json.loads((out / "run.json").read_text())


def zero_head(model_dir: Path, out: Path) -> Path:
    """A copy of a classifier directory whose head outputs zero logits: every window gets
    exactly ``p = 0.5`` for each class (the safetensors metadata kept)."""
    shutil.copytree(model_dir, out)
    weights = out / "model.safetensors"
    with safe_open(weights, "pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    heads = [k for k in tensors if not k.startswith("backbone.")]
    assert heads, sorted(tensors)
    tensors |= {k: torch.zeros_like(tensors[k]) for k in heads}
    save_file(tensors, weights, metadata=metadata)
    return out


def decision(out: Path) -> tuple[str, float]:
    prediction = json.loads((out / "a" / "prediction.json").read_text())
    return prediction["decision"], prediction["score"]


def test_a_score_exactly_at_the_threshold_is_positive(task_dirs, videos, tmp_path):
    ckpt = zero_head(task_dirs["classification"], tmp_path / "half")
    video = videos / "a.mp4"
    predict("classification", ckpt, video, tmp_path / "low", "--threshold", "0")
    predict("classification", ckpt, video, tmp_path / "at", "--threshold", "0.5")
    predict("classification", ckpt, video, tmp_path / "above", "--threshold", "0.5001")
    positive, score = decision(tmp_path / "low")
    assert score == 0.5
    assert decision(tmp_path / "at") == (positive, 0.5)
    assert decision(tmp_path / "above")[0] != positive


@pytest.fixture(scope="module")
def detector_at(task_dirs, tmp_path_factory):
    """The tiny detector saved with a given operating threshold (as a fine-tune that chose one
    on validation writes it)."""
    from endofm.config import load_config, recipe_path
    from endofm.inference import load_task_model
    from endofm.tasks import TASKS
    from endofm.tasks.base import task_config_schema

    cls = TASKS["detection"]
    task = cls(load_config(task_config_schema(cls), recipe_path("detection", "tiny"), []))
    model = load_task_model(task_dirs["detection"]).model
    root = tmp_path_factory.mktemp("operating")

    def save(threshold: float) -> Path:
        model.operating_threshold = threshold
        return task.save_model(model, root / f"at_{threshold:g}")

    return save


def kept(run: dict, out: Path, threshold: float) -> tuple[int, int]:
    """(detections the run counted, boxes in detections.json scoring >= threshold)."""
    boxes = json.loads((out / "a" / "detections.json").read_text())["annotations"]
    (record,) = run["videos"].values()
    return record["detections"], sum(b["score"] >= threshold for b in boxes)


def test_detection_uses_the_models_operating_threshold(detector_at, videos, tmp_path):
    video = videos / "a.mp4"
    scores = sorted(b["score"] for b in json.loads((_first_run(detector_at, video, tmp_path)
                                                    / "a" / "detections.json").read_text()
                                                   )["annotations"])
    assert len(scores) >= 4, scores
    operating = round(scores[len(scores) // 2], 6)  # about half the boxes pass it
    assert operating < 0.5
    out = tmp_path / "stored"
    run = predict("detection", detector_at(operating), video, out)
    assert run["settings"]["threshold"] == pytest.approx(operating)
    counted, expected = kept(run, out, operating)
    assert counted == expected and 0 < counted < len(scores)
    out = tmp_path / "given"  # an explicit --threshold wins over the stored one
    run = predict("detection", detector_at(operating), video, out, "--threshold", "0.9")
    assert run["settings"]["threshold"] == pytest.approx(0.9)
    assert kept(run, out, 0.9)[0] == kept(run, out, 0.9)[1]


def _first_run(detector_at, video: Path, tmp_path: Path) -> Path:
    """Every box the model gives (operating threshold 0: nothing hidden), to pick a threshold
    between its scores."""
    out = tmp_path / "all"
    predict("detection", detector_at(1e-9), video, out)
    return out
