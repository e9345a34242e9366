"""The pre-training switches that select the release's behaviour: ``ssl.teacher=release``,
``optim.clip_mode=per_param``, ``optim.decay_embeddings=true``."""

import math

import pytest
import torch

import endofm
from endofm.ssl import DINOHead, Encoder, SSLMetaArch
from endofm.train import clip_gradients, param_groups

from .conftest import tiny_objective

VIEWS = [torch.randn(2, 3, 2, 32, 32, generator=torch.Generator().manual_seed(1)),
         torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(2)),
         torch.randn(2, 3, 2, 16, 16, generator=torch.Generator().manual_seed(3))]


def encoder(drop_path_rate: float = 0.5) -> Encoder:
    torch.manual_seed(0)
    backbone = endofm.create_model("endofm_vit_tiny_patch16", img_size=32, num_frames=2,
                                   embed_dim=48, depth=2, num_heads=4,
                                   drop_path_rate=drop_path_rate)
    return Encoder(backbone, DINOHead(48, 32, 64, 16))


def teacher_outputs(meta: SSLMetaArch) -> list[torch.Tensor]:
    return meta.forward_plain(VIEWS).teacher


def test_release_teacher_uses_drop_path_and_moves_only_by_ema():
    meta = SSLMetaArch(encoder(), tiny_objective(), teacher="release").train()
    assert meta.teacher.training and all(not p.requires_grad for p in meta.teacher.parameters())
    rates = [m.drop_prob for m in meta.teacher.modules() if hasattr(m, "drop_prob")]
    assert rates == [m.drop_prob for m in meta.student.modules() if hasattr(m, "drop_prob")]
    assert max(rates) == pytest.approx(0.5)
    before = {k: v.clone() for k, v in meta.teacher.state_dict().items()}
    first, second = teacher_outputs(meta), teacher_outputs(meta)
    assert not torch.allclose(first[0], second[0])  # drop path active in the targets
    assert all(torch.equal(v, meta.teacher.state_dict()[k]) for k, v in before.items())
    # one optimiser step on the student; the teacher changes only through the EMA
    optimizer = torch.optim.SGD(meta.student.parameters(), lr=0.1)
    student = meta.forward_plain(VIEWS).student
    sum(s.square().mean() for s in student).backward()
    optimizer.step()
    assert all(p.grad is None for p in meta.teacher.parameters())
    assert all(torch.equal(v, meta.teacher.state_dict()[k]) for k, v in before.items())
    meta.update_teacher(0.9)
    new_student = meta.student.state_dict()
    for k, v in meta.teacher.state_dict().items():
        torch.testing.assert_close(v, 0.9 * before[k] + 0.1 * new_student[k])
    meta.eval()
    assert not meta.teacher.training
    torch.testing.assert_close(teacher_outputs(meta)[0], teacher_outputs(meta)[0])


def test_eval_teacher_is_deterministic_in_training():
    meta = SSLMetaArch(encoder(), tiny_objective(), teacher="eval").train()
    assert not meta.teacher.training
    torch.testing.assert_close(teacher_outputs(meta)[0], teacher_outputs(meta)[0])


def test_unknown_teacher_mode_is_an_error():
    with pytest.raises(ValueError, match="teacher"):
        SSLMetaArch(encoder(), tiny_objective(), teacher="frozen")


def grads(*values: list[float]) -> list[torch.nn.Parameter]:
    params = [torch.nn.Parameter(torch.zeros(len(v))) for v in values]
    for p, v in zip(params, values, strict=True):
        p.grad = torch.tensor(v)
    return params


def test_per_param_clipping_is_the_release_rule():
    big, small = grads([3.0, 4.0], [0.3, 0.4])  # norms 5 and 0.5
    clip_gradients([big, small], 1.0, "per_param")
    torch.testing.assert_close(big.grad, torch.tensor([3.0, 4.0]) / (5 + 1e-6))
    torch.testing.assert_close(small.grad, torch.tensor([0.3, 0.4]), rtol=0, atol=0)


def test_global_clipping_scales_all_together():
    big, small = grads([3.0, 4.0], [0.3, 0.4])
    clip_gradients([big, small], 1.0, "global")
    scale = 1.0 / (math.sqrt(25 + 0.25) + 1e-6)
    torch.testing.assert_close(big.grad, torch.tensor([3.0, 4.0]) * scale)
    torch.testing.assert_close(small.grad, torch.tensor([0.3, 0.4]) * scale)
    with pytest.raises(ValueError, match="clip mode"):
        clip_gradients([big], 1.0, "norm")


def test_release_weight_decay_rule_decays_embeddings():
    enc = encoder()
    named = {id(p): n for n, p in enc.named_parameters()}
    for decay_embeddings, embeddings_decayed in ((True, True), (False, False)):
        groups = param_groups(enc, 0.04, decay_embeddings=decay_embeddings)
        decayed = {named[id(p)] for g in groups if g["wd_mult"] for p in g["params"]}
        exempt = {named[id(p)] for g in groups if not g["wd_mult"] for p in g["params"]}
        for name in ("backbone.pos_embed", "backbone.time_embed", "backbone.cls_token"):
            assert (name in decayed) == embeddings_decayed
        # the release: every tensor but biases and 1-D tensors is decayed
        want = {n for n, p in enc.named_parameters() if p.requires_grad and p.ndim > 1}
        if decay_embeddings:
            assert decayed == want
        assert "backbone.norm.weight" in exempt and "head.mlp.0.bias" in exempt


def test_release_recipe_runs_at_tiny_size(sample_data, tmp_path):
    """configs/pretrain/endofm_vitb_release.yaml with tiny.yaml's model, head and view sizes
    (the release's switches, drop path and schedules kept) trains."""
    from omegaconf import OmegaConf

    from endofm.config import RECIPES, load_config
    from endofm.ssl import PretrainConfig, pretrain

    configs = RECIPES / "pretrain"
    tiny = OmegaConf.load(configs / "tiny.yaml")
    sizes = [f"model.backbone.{k}={tiny.model.backbone[k]}"
             for k in ("name", "embed_dim", "depth", "num_heads")]
    sizes += [f"head.{k}={v}" for k, v in tiny.head.items()]
    sizes += [f"views.{k}={OmegaConf.to_container(v) if OmegaConf.is_list(v) else v}"
              .replace(" ", "") for k, v in tiny.views.items()]
    cfg = load_config(PretrainConfig, configs / "endofm_vitb_release.yaml", [
        *sizes, "train.epochs=1", "train.num_workers=0", "train.precision=fp32",
        "train.device=cpu", "train.progress=false"])
    assert (cfg.optim.clip_mode, cfg.optim.decay_embeddings, cfg.ssl.teacher) == (
        "per_param", True, "release")
    assert cfg.model.backbone.drop_path_rate == 0.1 and cfg.optim.clip_grad == 3.0
    report = pretrain(cfg, sample_data["videos"], tmp_path)
    assert report["epochs"] == 1 and math.isfinite(report["final_loss"])
