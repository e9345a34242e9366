"""The operating threshold: chosen on validation to maximise f1_center, stored with the model,
reused (not re-chosen) by later evaluations, which also report the release's 0.5."""

import json

import numpy as np
import pytest

import endofm.tasks.detection.evaluation as evaluation
from endofm.config import load_config, recipe_path
from endofm.tasks import TASKS
from endofm.tasks.base import task_config_schema
from endofm.tasks.detection.metrics import FrameDetections, center_metrics, choose_threshold


def tiny_task(*overrides: str):
    cfg = load_config(task_config_schema(TASKS["detection"]), recipe_path("detection", "tiny"),
                      list(overrides))
    return TASKS["detection"](cfg)


GT = np.array([[10.0, 10.0, 30.0, 30.0]])


def frame(gt: bool, score: float) -> FrameDetections:
    """A frame with (or without) a polyp and one prediction centred on it, scoring ``score``."""
    return FrameDetections(GT if gt else np.zeros((0, 4)), [1] if gt else [],
                           GT + 1.0, [score], [1])


def test_choose_threshold_maximises_f1_center():
    # a polyp found at 0.3, a false alarm at 0.2 on a clean frame:
    # t=0.2 → tp 1, fp 1 (F1 2/3); t=0.3 → F1 1; t=0.5 → nothing kept (F1 0)
    frames = [frame(True, 0.3), frame(False, 0.2)]
    assert choose_threshold(frames) == (pytest.approx(0.3), pytest.approx(1.0))
    # every threshold up to 0.9 keeps the one hit and nothing else: the tie goes to the
    # candidate nearest the release's 0.5
    assert choose_threshold([frame(True, 0.9), frame(True, 0.9)]) == (0.5, 1.0)
    rng = np.random.default_rng(0)
    frames = [frame(bool(rng.random() < 0.6), float(rng.random())) for _ in range(40)]
    chosen, f1 = choose_threshold(frames)
    brute = max(center_metrics(frames, t)["f1_center"] for t in np.linspace(0, 1, 2001))
    assert f1 == pytest.approx(brute) and center_metrics(frames, chosen)["f1_center"] == f1


def fake_predictions(score_of_polyps: float):
    """``predict`` stand-in: every annotated frame gets a centred box scoring
    ``score_of_polyps``, every clean frame a false alarm scoring 0.2."""

    def predict(model, dataset, *args, **kwargs):
        return [frame(bool(len(dataset.frame(i).boxes)),
                      score_of_polyps if len(dataset.frame(i).boxes) else 0.2)
                for i in range(len(dataset))]

    return predict


def test_threshold_chosen_on_validation_is_stored_and_reused(sample_data, tmp_path,
                                                             monkeypatch):
    task = tiny_task("model.min_size=64", "model.max_size=64")
    videos = task.read_items(sample_data["kumc"], "val")
    model = task.build_model()
    monkeypatch.setattr(evaluation, "predict", fake_predictions(0.3))
    selection = task.evaluate(model, videos, "cpu")  # a selection evaluation: chooses
    assert model.operating_threshold == pytest.approx(0.3)
    assert selection["score_threshold"] == pytest.approx(0.3)
    assert selection["f1_center"] == 1.0
    assert selection["at_release_threshold"]["f1_center"] == 0.0
    task.save_model(model, tmp_path / "best")
    config = json.loads((tmp_path / "best" / "config.json").read_text())
    assert config["operating_threshold"] == pytest.approx(0.3)

    loaded = tiny_task().load_model(tmp_path / "best")
    assert loaded.operating_threshold == pytest.approx(0.3)
    # the test split is scored at the stored threshold, never re-chosen on it: polyps now
    # score 0.25, below the stored 0.3
    monkeypatch.setattr(evaluation, "predict", fake_predictions(0.25))
    test = tiny_task().evaluate(loaded, videos, "cpu", out_dir=tmp_path / "test")
    assert test["score_threshold"] == pytest.approx(0.3) and test["recall_center"] == 0.0
    assert loaded.operating_threshold == pytest.approx(0.3)
    assert test["at_release_threshold"]["score_threshold"] == 0.5
    json.dumps(test)  # the engine writes it to metrics.json
    # without a stored threshold (e.g. protocol.selection=fixed) the release's 0.5 is used
    fresh = task.build_model()
    assert tiny_task().evaluate(fresh, videos, "cpu", out_dir=tmp_path / "t2")[
        "score_threshold"] == 0.5
