"""A ``model.safetensors`` endofm writes describes its model in its header: the file alone
loads as its folder does; a file without that metadata keeps the plain-weights behaviour."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import endofm
from endofm.models import CheckpointError, load_checkpoint
from endofm.models.checkpoint import read_state_meta
from endofm.tasks.classification.model import VideoClassifier

# a width no named config has: its head count can only come from what the file records
ODD = dict(img_size=32, num_frames=2, embed_dim=64, depth=2, num_heads=2, drop_path_rate=0.0)


def header(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as f:
        return f.metadata()


@pytest.fixture
def backbone_dir(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return endofm.save_pretrained(endofm.create_model("endofm_vit_tiny_patch16", **ODD),
                                  tmp_path / "backbone")


def test_the_header_carries_the_architecture_and_kind(backbone_dir):
    meta = header(backbone_dir / "model.safetensors")
    assert all(isinstance(v, str) for v in meta.values())
    assert json.loads(meta["kind"]) == "backbone"
    assert json.loads(meta["backbone"])["num_heads"] == 2
    assert {k: json.loads(v) for k, v in meta.items()} == json.loads(
        (backbone_dir / "config.json").read_text())


def test_create_model_on_the_file_alone_equals_its_folder(backbone_dir):
    folder = endofm.create_model("endofm_vit_base_patch16", pretrained=backbone_dir).eval()
    alone = endofm.create_model("endofm_vit_base_patch16",
                                pretrained=backbone_dir / "model.safetensors").eval()
    assert load_checkpoint(backbone_dir / "model.safetensors").layout == "endofm_file"
    assert alone.num_heads == 2
    a, b = folder.state_dict(), alone.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    clip = torch.rand(2, 3, 2, 32, 32)
    with torch.no_grad():
        assert torch.equal(folder(clip), alone(clip))


def test_a_task_model_file_names_its_task(tmp_path):
    from endofm.inference import load_task_model

    torch.manual_seed(0)
    model = VideoClassifier(endofm.create_model("endofm_vit_tiny_patch16", **ODD), 3).eval()
    folder = model.save_pretrained(tmp_path / "clf")
    meta = {k: json.loads(v) for k, v in header(folder / "model.safetensors").items()}
    assert (meta["kind"], meta["task"], meta["num_classes"]) == ("classifier", "classification",
                                                                  3)
    alone = load_task_model(folder / "model.safetensors")
    assert alone.task == "classification" and alone.model.linear.out_features == 3
    clip = torch.rand(1, 3, 2, 32, 32)
    with torch.no_grad():
        assert torch.equal(alone.model(clip), model(clip))
    # the backbone of a task model's file, as of its folder
    backbone = endofm.create_model(pretrained=folder / "model.safetensors")
    assert torch.equal(backbone.pos_embed, model.backbone.pos_embed)


def test_a_file_without_the_metadata_keeps_the_plain_behaviour(backbone_dir, tmp_path):
    plain = tmp_path / "model.safetensors"
    save_file(endofm.create_model(pretrained=backbone_dir).state_dict(), str(plain))
    assert load_checkpoint(plain).layout == "plain"
    with pytest.raises(CheckpointError, match="num_heads required"):
        endofm.create_model(pretrained=plain)
    assert endofm.create_model(pretrained=plain, num_heads=2).num_heads == 2
    with pytest.raises(CheckpointError, match="no endofm header metadata"):
        read_state_meta(plain)
