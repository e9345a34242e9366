"""The pre-training schema's defaults are the release's recipe
(docs/release.md#pre-training-recipe), and the shipped ViT-B recipe resolves to it. The numbers
below are written out from that page, not read from the code."""


import pytest

from endofm.config import RECIPES, load_config
from endofm.ssl import PretrainConfig

RECIPE = RECIPES / "pretrain" / "endofm_vitb.yaml"

RELEASE = {
    "model.backbone.drop_path_rate": 0.1,
    "model.backbone.img_size": 224,
    "model.backbone.num_frames": 8,
    "head.out_dim": 65536,
    "head.hidden_dim": 2048,
    "head.bottleneck_dim": 256,
    "loss.teacher_temp": 0.04,
    "loss.warmup_teacher_temp": 0.04,  # no teacher-temperature warm-up
    "loss.student_temp": 0.1,
    "loss.center_momentum": 0.9,
    "train.batch_size": 3,
    "optim.lr": 5e-4,
    "optim.min_lr": 1e-6,
    "optim.warmup_epochs": 10,
    "optim.weight_decay": 0.04,
    "optim.weight_decay_end": 0.4,
    "optim.momentum_teacher": 0.996,
    "optim.clip_grad": 3.0,
    "optim.freeze_last_layer": 1,
    "views.num_frames": 8,
    "views.frame_step": 32,
    "views.global_size": 224,
    "views.global_frames": [8, 16],
    "views.global_offset": 5,
    "views.global_scale": [0.4, 1.0],
    "views.local_size": 96,
    "views.local_frames": [2, 2, 4, 4, 8, 8, 16, 16],
    "views.local_scale": [0.05, 0.4],
    "views.flip_p": 0.5,
    "views.jitter_p": 0.8,
    "views.brightness": 0.4,
    "views.contrast": 0.4,
    "views.saturation": 0.2,
    "views.grayscale_p": 0.2,
    "views.mean": [0.485, 0.456, 0.406],
    "views.std": [0.229, 0.224, 0.225],
    "train.precision": "fp16",
}


def lookup(cfg, dotted: str):
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return list(cfg) if not isinstance(cfg, (int, float, str)) else cfg


@pytest.mark.parametrize("source", ["schema", "recipe"])
def test_pretrain_defaults_are_the_release_recipe(source):
    cfg = load_config(PretrainConfig, RECIPE if source == "recipe" else None)
    found = {key: lookup(cfg, key) for key in RELEASE}
    assert found == RELEASE
