"""``load_task_model`` and ``load_backbone`` recognise a model by the kind it records, through
the task registry."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from endofm.inference import load_backbone, load_task_model
from endofm.inference.task_models import saved_task
from endofm.models import CheckpointError

POLYPDIAG = Path(__file__).resolve().parents[1] / "assets" / "endofm_reference_tiny" / \
    "polypdiag_tiny.pth"


def test_each_task_dir_is_recognised_by_its_kind(task_dirs):
    for task, folder in task_dirs.items():
        assert saved_task(folder).name == task
        assert saved_task(folder / "model.safetensors").name == task
        assert load_task_model(folder).task == task


def test_a_backbone_or_a_run_folder_is_not_a_task_model(tiny_backbone_dir, task_dirs, tmp_path):
    assert saved_task(tiny_backbone_dir) is None and saved_task(POLYPDIAG) is None
    with pytest.raises(CheckpointError, match="kind 'backbone' is not a fine-tuned task model; "
                                              "expected one of classifier, "):
        load_task_model(tiny_backbone_dir)
    run = tmp_path / "run"
    (run / "best").mkdir(parents=True)
    for name in ("model.safetensors", "config.json"):
        (run / "best" / name).write_bytes((task_dirs["segmentation"] / name).read_bytes())
    with pytest.raises(FileNotFoundError, match=f"it is a run folder, whose model is "
                                                f"{run / 'best'}"):
        load_task_model(run)


def test_a_released_file_goes_to_the_task_that_reads_its_layout():
    model = load_task_model(POLYPDIAG, num_heads=4)
    assert (model.task, model.num_frames) == ("classification", model.model.backbone.num_frames)
    with pytest.raises(CheckpointError, match="the segmentation task reads this file"):
        load_task_model(POLYPDIAG, "segmentation", num_heads=4)


def test_load_backbone_gives_a_task_models_backbone_with_its_caveat(task_dirs):
    """The hybrid segmenter says its ViT's patch embedding is untrained; other models say
    nothing."""
    with pytest.warns(UserWarning, match="hybrid segmenter's ViT was trained on ResNet"):
        backbone = load_backbone(task_dirs["segmentation"])
    model = load_task_model(task_dirs["segmentation"]).model
    assert torch.equal(backbone.pos_embed, model.backbone.pos_embed)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        detector_backbone = load_backbone(task_dirs["detection"])
    assert detector_backbone.embed_dim == 96


def test_a_phase_model_loads_as_a_task_model_fed_window_features(tmp_path):
    """A phase model is read through the registry like every task's: its folder and its
    ``model.safetensors`` alone give the same model, fed the features of the windows its
    backbone encodes (2 frames of 32 px, 10 windows a second: frames 0.05 s apart)."""
    from endofm.tasks.base import InputKind
    from tests.tiny_inputs import tiny_phase_model

    folder = tiny_phase_model(tmp_path / "phase")
    for path in (folder, folder / "model.safetensors"):
        loaded = load_task_model(path)
        assert (loaded.task, loaded.input_kind) == ("phase", InputKind.features)
        assert (loaded.num_frames, loaded.img_size, loaded.frame_step) == (2, 32, "0.05s")
        assert loaded.settings.data.phases == ["idle", "cut", "close"]
    with pytest.raises(ValueError, match="a phase model has no windowed predictor; use "
                                         "`endofm predict phase`"):
        from endofm.inference.predict import make_predictor

        make_predictor(load_task_model(folder))
    with pytest.raises(ValueError, match="a phase model takes window features, not video "
                                         "windows, and has no backbone of its own; give the "
                                         r"backbone its features come from \(the backbone/"):
        load_backbone(folder)
    assert load_backbone(folder / "backbone").embed_dim == load_task_model(folder).model.in_dim

