"""A released training checkpoint also pickles NumPy values (the epoch, hyper-parameters in
``args``, loss statistics): the weights-only loader must read every kind the release writes,
and still load the weights."""

import argparse

import numpy as np
import pytest
import torch

import endofm
from endofm.models import load_checkpoint, safe_load

# one value per allow-listed NumPy kind: a scalar of each dtype class, and an array
NUMPY_VALUES = {
    "epoch": np.int64(29),
    "lr": np.float64(5e-4),
    "teacher_temp": np.float32(0.04),
    "use_fp16": np.bool_(True),
    "loss_history": np.array([5.5, 4.25, 3.0]),
}


def released_like(teacher_backbone: dict) -> dict:
    """The layout of ``endo_fm.pth`` with NumPy values where the release's training script
    keeps them."""
    teacher = {f"backbone.{k}": v for k, v in teacher_backbone.items()}
    args = argparse.Namespace(arch="timesformer", lr=NUMPY_VALUES["lr"],
                              teacher_temp=NUMPY_VALUES["teacher_temp"],
                              use_fp16=NUMPY_VALUES["use_fp16"])
    return {"teacher": teacher, "epoch": NUMPY_VALUES["epoch"], "args": args,
            "dino_loss": {"center": torch.zeros(1, 8)},
            "loss_history": NUMPY_VALUES["loss_history"]}


@pytest.fixture
def released_file(tmp_path, teacher_backbone):
    path = tmp_path / "endo_fm.pth"
    torch.save(released_like(teacher_backbone), path)
    return path


def test_numpy_values_read_back_exactly(released_file):
    raw = safe_load(released_file)
    read = {"epoch": raw["epoch"], "lr": raw["args"].lr, "teacher_temp": raw["args"].teacher_temp,
            "use_fp16": raw["args"].use_fp16, "loss_history": raw["loss_history"]}
    for name, value in NUMPY_VALUES.items():
        assert type(read[name]) is type(value), name
        np.testing.assert_array_equal(read[name], value)
        assert np.asarray(read[name]).dtype == np.asarray(value).dtype, name


def test_weights_of_a_file_with_numpy_values_load(released_file, reference, teacher_backbone):
    ckpt = load_checkpoint(released_file)
    assert ckpt.layout == "released_pretrain"
    assert {"epoch", "args", "loss_history"} <= set(ckpt.ignored)
    assert ckpt.state_dict.keys() == teacher_backbone.keys()
    model = endofm.create_model("endofm_vit_base_patch16", pretrained=released_file,
                                num_heads=4).eval()
    with torch.no_grad():
        out = model(reference["inputs"][1])
    torch.testing.assert_close(out, reference["outputs"]["cls_1"], atol=1e-4, rtol=0)
