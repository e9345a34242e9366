"""The head count is never guessed: released files do not store it, so it comes from the named
config of the file's width or must be given."""

from pathlib import Path

import pytest
import torch

import endofm
from endofm.models import CheckpointError, load_checkpoint
from endofm.models.registry import resolve_num_heads

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "endofm_reference_tiny"


def test_unnamed_width_requires_num_heads():
    with pytest.raises(CheckpointError, match="num_heads required.*width 96"):
        endofm.create_model(pretrained=ASSETS / "endo_fm_tiny.pth")
    with pytest.raises(CheckpointError, match="num_heads required.*width 96"):
        endofm.load_classifier(ASSETS / "polypdiag_tiny.pth")
    classifier = endofm.load_classifier(ASSETS / "polypdiag_tiny.pth", num_heads=4)
    assert classifier.backbone.num_heads == 4


def test_named_width_takes_the_named_heads(tmp_path):
    small = endofm.create_model("endofm_vit_small_patch16", depth=1, img_size=32, num_frames=2)
    torch.save(small.state_dict(), tmp_path / "small.pth")
    assert load_checkpoint(tmp_path / "small.pth").config.get("num_heads") is None
    model = endofm.create_model("endofm_vit_base_patch16", pretrained=tmp_path / "small.pth")
    assert (model.embed_dim, model.num_heads) == (384, 6)
    assert resolve_num_heads({"embed_dim": 96}, requested=4) == 4
    assert resolve_num_heads({"embed_dim": 96, "num_heads": 2}) == 2


def test_training_state_records_the_head_count(tmp_path):
    backbone = endofm.create_model("endofm_vit_tiny_patch16", embed_dim=96, num_heads=4, depth=1,
                                   img_size=32, num_frames=2)
    state = {"model": {f"backbone.{k}": v for k, v in backbone.state_dict().items()},
             "arch": {"num_heads": 4}, "config": {"model": {"num_heads": None}}}
    torch.save(state, tmp_path / "last.pth")
    assert load_checkpoint(tmp_path / "last.pth").config["num_heads"] == 4
    assert endofm.create_model(pretrained=tmp_path / "last.pth").num_heads == 4
