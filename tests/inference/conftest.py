"""Tiny models and small synthetic videos for the inference tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from endofm.data import write_video
from endofm.models import create_model, save_pretrained
from tests.tiny_inputs import TINY, moving_frames


@pytest.fixture(scope="session")
def tiny_backbone_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random backbone saved as an endofm directory (32 px, 4 frames, 96 wide)."""
    torch.manual_seed(0)
    model = create_model("endofm_vit_tiny_patch16", **TINY)
    return save_pretrained(model, tmp_path_factory.mktemp("tiny_backbone"))


@pytest.fixture
def videos(tmp_path: Path) -> Path:
    """A folder with two videos: ``a.mp4`` (50 frames at 30 fps) and ``sub/b.mkv`` (23 frames
    at 10 fps)."""
    root = tmp_path / "videos"
    write_video(root / "a.mp4", moving_frames(50), fps=30)
    write_video(root / "sub" / "b.mkv", moving_frames(23, seed=1), fps=10)
    return root


@pytest.fixture(scope="session")
def task_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Untrained tiny fine-tuned model directories for every task, written by each task's
    own ``save_model`` (predict only needs their format, not their accuracy)."""
    from endofm.config import load_config, recipe_path
    from endofm.tasks import TASKS
    from endofm.tasks.base import task_config_schema
    from endofm.tasks.classification.model import VideoClassifier

    root = tmp_path_factory.mktemp("task_models")
    torch.manual_seed(0)
    clf = VideoClassifier(create_model("endofm_vit_tiny_patch16", **TINY))
    dirs = {"classification": clf.save_pretrained(root / "classification")}
    for task in ("segmentation", "detection"):
        cls = TASKS[task]
        size = ["data.img_size=32"] if task == "segmentation" else []
        obj = cls(load_config(task_config_schema(cls), recipe_path(task, "tiny"), size))
        dirs[task] = obj.save_model(obj.build_model(None), root / task)
    return dirs
