"""Tiny fine-tuned models of every task, their ONNX exports and small synthetic videos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from endofm.data import write_video
from endofm.deploy.live import LiveRun, open_live_run
from endofm.models import create_model, save_pretrained
from tests.tiny_inputs import TINY, moving_frames

TASKS = ("backbone", "classification", "segmentation", "detection")


def live(checkpoint: Path, source: Path, out: Path, **options) -> LiveRun:
    """:func:`open_live_run` on the CPU in fp32 (``options`` override)."""
    options = {"precision": "fp32", "device": "cpu"} | options
    return open_live_run(checkpoint, str(source), out, **options)


def lines(folder: Path) -> list[dict]:
    """The records of a live run's ``decisions.jsonl``, in order."""
    return [json.loads(line) for line in (folder / "decisions.jsonl").read_text().splitlines()]


def diverging_runs(checkpoint: Path, frames: np.ndarray, folder: Path, diverge_at: int = 20,
                   **options) -> list[dict[int, dict]]:
    """Live runs of ``checkpoint`` on two lossless videos (25 fps) equal up to frame
    ``diverge_at``: ``frames``, then ``frames`` inverted from there on. Each run's records by
    their newest frame."""
    other = frames.copy()
    other[diverge_at:] = 255 - other[diverge_at:]
    runs = []
    for name, content in (("a", frames), ("b", other)):
        path = write_video(folder / f"{name}.mkv", content, fps=25, codec="ffv1")
        live(checkpoint, path, folder / name, **options).run()
        runs.append({r["newest_frame"]: r for r in lines(folder / name)})
    return runs


@pytest.fixture(scope="session")
def make_frames():
    """:func:`moving_frames`, for tests that write their own videos."""
    return moving_frames


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Untrained tiny models: a backbone and one directory per task, each written by its own
    ``save_model``/``save_pretrained``."""
    from endofm.config import load_config, recipe_path
    from endofm.tasks import TASKS as TASK_CLASSES
    from endofm.tasks.base import task_config_schema
    from endofm.tasks.classification.model import VideoClassifier

    root = tmp_path_factory.mktemp("deploy_models")
    torch.manual_seed(0)
    dirs = {"backbone": save_pretrained(create_model("endofm_vit_tiny_patch16", **TINY),
                                        root / "backbone")}
    clf = VideoClassifier(create_model("endofm_vit_tiny_patch16", **TINY))
    dirs["classification"] = clf.save_pretrained(root / "classification")
    for task in ("segmentation", "detection"):
        cls = TASK_CLASSES[task]
        size = ["data.img_size=32"] if task == "segmentation" else ["model.min_size=64",
                                                                    "model.max_size=64"]
        obj = cls(load_config(task_config_schema(cls), recipe_path(task, "tiny"), size))
        model = obj.build_model(None)
        model.operating_threshold = 0.01  # detection: below the untrained model's scores
        dirs[task] = obj.save_model(model, root / task)
    return dirs


@pytest.fixture(scope="session")
def export_reports(model_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
                   ) -> dict:
    """Each model of :func:`model_dirs` exported by ``export_onnx`` (parity checked): the
    task's ``ExportReport``."""
    from endofm.deploy.export import export_onnx
    from endofm.deploy.model import load_deploy_model

    root = tmp_path_factory.mktemp("onnx")
    return {task: export_onnx(load_deploy_model(path), root / f"{task}.onnx")
            for task, path in model_dirs.items()}


@pytest.fixture(scope="session")
def exported(export_reports: dict) -> dict[str, Path]:
    """The ONNX file of each task's model."""
    return {task: report.path for task, report in export_reports.items()}


@pytest.fixture
def video(tmp_path: Path) -> Path:
    """``clip.mp4``: 40 frames of 48x64 at 25 fps."""
    path = tmp_path / "clip.mp4"
    write_video(path, moving_frames(40), fps=25)
    return path
