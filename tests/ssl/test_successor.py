"""The successor's options wired into the meta-architecture and the trainer: masked student
input, patch outputs at masked tokens only, exact resume with every option on, the LV recipe."""

import json
from pathlib import Path

import pytest
import torch

import endofm
from endofm.config import RECIPES, load_config
from endofm.ssl import DINOHead, Encoder, PretrainConfig, SSLMetaArch, pretrain
from endofm.ssl.masking import BlockMaskConfig, view_masks
from endofm.ssl.trainer import build_encoder
from endofm.train import step_checkpoints as checkpoints

from .conftest import pretrain_killed_at_step, tiny_objective

CONFIGS = RECIPES / "pretrain"
FAST = ["model.backbone.depth=1", "head.out_dim=64", "head.hidden_dim=64", "head.bottleneck_dim=16",
        "train.batch_size=2", "train.epochs=2", "train.progress=false", "train.device=cpu"]
EVERYTHING = ["loss.ibot_weight=1.0",
              "loss.ibot_separate_head=true", "loss.ibot_mask_mode=frame",
              "loss.ibot_mask_probability=1.0", "loss.koleo_weight=0.1",
              "model.backbone.grad_checkpointing=true"]


def tiny_meta(separate=False):
    torch.manual_seed(0)
    backbone = endofm.create_model("endofm_vit_tiny_patch16", img_size=32, num_frames=2,
                                   embed_dim=48, depth=1, num_heads=4, use_mask_token=True)
    with torch.no_grad():
        backbone.mask_token.normal_()
    patch_head = DINOHead(48, 32, 64, 16) if separate else None
    return SSLMetaArch(Encoder(backbone, DINOHead(48, 32, 64, 16), patch_head),
                       tiny_objective()).eval()


def test_student_sees_mask_tokens_teacher_sees_the_clip():
    meta = tiny_meta()
    views = [torch.randn(2, 3, 2, 64, 64), torch.randn(2, 3, 4, 64, 64)]
    cfg = BlockMaskConfig(ratio_range=(0.25, 0.5), probability=1.0, mode="tube", min_block=1)
    masks = view_masks(2, [2, 4], 4, 4, cfg, torch.Generator().manual_seed(0))
    # change the pixels of the masked patches of the first view only
    hidden = masks[0].reshape(2, 4, 4, 2).any(dim=-1)  # [B, h, w] (tube)
    assert hidden.sum(dim=(1, 2)).min() > 0
    pixel_mask = hidden.repeat_interleave(16, 1).repeat_interleave(16, 2)[:, None, None]
    changed = [torch.where(pixel_mask, views[0] + 5.0, views[0]), views[1]]
    with torch.no_grad():
        a = meta.forward_masked(views, masks)
        b = meta.forward_masked(changed, masks)
        off = meta.forward_masked(changed, masks, mask_input=False)
    torch.testing.assert_close(a.student[0], b.student[0])  # hidden pixels never seen
    torch.testing.assert_close(a.student_patch, b.student_patch)
    assert not torch.allclose(a.teacher[0], b.teacher[0])  # the teacher sees them
    assert not torch.allclose(a.student[0], off.student[0])  # LV mode: nothing hidden
    assert a.student_patch.shape[0] == sum(int(m.sum()) for m in masks)
    assert [tuple(c.shape) for c in a.student_cls] == [(2, 48), (2, 48)]


def test_patch_outputs_are_the_masked_tokens_through_the_patch_head():
    meta = tiny_meta(separate=True)
    x = torch.randn(2, 3, 2, 32, 32)
    masks = torch.zeros(2, 8, dtype=torch.bool)
    masks[0, 3] = masks[1, 0] = masks[1, 7] = True
    with torch.no_grad():
        out = meta.teacher.forward_masked(x, masks, mask_input=False)
        tokens = meta.teacher.backbone.forward_features(x)
    expected = meta.teacher.patch_head(torch.stack([tokens[0, 4], tokens[1, 1], tokens[1, 8]]))
    torch.testing.assert_close(out.patch, expected)
    torch.testing.assert_close(out.logits, meta.teacher.head(tokens[:, 0]))


def test_mask_token_is_pretraining_only_in_checkpoints(tmp_path):
    model = endofm.create_model("endofm_vit_tiny_patch16", img_size=32, num_frames=2,
                                embed_dim=48, depth=1, num_heads=4, use_mask_token=True)
    torch.save({"model": model.state_dict()}, tmp_path / "m.pth")
    with pytest.warns(UserWarning, match="mask_token"):
        plain = endofm.create_model("endofm_vit_tiny_patch16", pretrained=tmp_path / "m.pth",
                                    num_heads=4)
    assert plain.mask_token is None
    with pytest.raises(ValueError, match="mask token"):
        plain.forward_features(torch.randn(1, 3, 2, 32, 32), torch.ones(1, 8, dtype=torch.bool))


def cfg(*overrides):
    return load_config(PretrainConfig, CONFIGS / "tiny.yaml", [*FAST, *overrides])


def state(output):
    return torch.load(checkpoints(Path(output))[-1], weights_only=True)


@pytest.mark.parametrize("centering", ["sinkhorn_knopp", "running"])
def test_resume_with_every_option_on_is_exact(sample_data, tmp_path, monkeypatch, centering):
    videos = sample_data["videos"]
    options = [*EVERYTHING, f"loss.centering={centering}", "train.save_every_steps=1"]
    pretrain(cfg(*options), videos, tmp_path / "straight")
    pretrain_killed_at_step(cfg(*options), videos, tmp_path / "split", monkeypatch)
    pretrain(cfg(*options), videos, tmp_path / "split")
    a, b = state(tmp_path / "straight"), state(tmp_path / "split")
    assert a["step"] == b["step"] == 4
    assert any(k.startswith("patch_head.") for k in a["student"])
    assert "backbone.mask_token" in a["student"]
    for part in ("teacher", "student"):
        for k, v in a[part].items():
            assert torch.equal(v, b[part][k]), (part, k)
    assert torch.equal(a["ibot_loss"]["center"], b["ibot_loss"]["center"])
    assert (a["ibot_loss"]["center"].abs().sum() > 0) == (centering == "running")
    log = (tmp_path / "straight" / "metrics.jsonl").read_text()
    rows = [json.loads(x) for x in log.splitlines()]
    assert all(r["ibot"] > 0 and "koleo" in r for r in rows)
    # the masked forward bypasses backbone.forward: the teacher's CLS features still reach
    # the collapse monitor (embedding_std was NaN when they came only from a forward hook)
    assert all(0 < r["embedding_std"] < float("inf") for r in rows), rows
    for r in rows:  # the total is the weighted sum of the terms
        assert r["loss"] == pytest.approx(r["dino_loss"] + r["ibot"] + 0.1 * r["koleo"],
                                          rel=1e-5)


def test_lv_recipe_loads_and_a_tiny_copy_trains(sample_data, tmp_path):
    full = load_config(PretrainConfig, CONFIGS / "endofm_lv.yaml")
    assert (full.views.global_frames, full.loss.centering, full.loss.koleo_weight,
            full.loss.ibot_weight, full.model.backbone.num_frames) == (
        [16, 32], "sinkhorn_knopp", 0.1, 0.5, 32)
    encoder = build_encoder(full)
    assert encoder.backbone.mask_token is not None and encoder.patch_head is None
    tiny = load_config(PretrainConfig, CONFIGS / "tiny_lv.yaml",
                       ["train.epochs=2", "train.progress=false", "train.device=cpu"])
    assert tiny.loss == full.loss  # the same losses and switches
    report = pretrain(tiny, sample_data["videos"], tmp_path)
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert report["steps"] == len(rows) >= 3
    assert any(r["ibot"] > 0 for r in rows) and all(r["koleo"] != 0 for r in rows)
    assert all(torch.isfinite(torch.tensor([r["loss"], r["ibot"], r["koleo"]])).all()
               for r in rows)
    assert torch.equal(state(tmp_path)["dino_loss"]["center"], torch.zeros(1, 256))  # SK
