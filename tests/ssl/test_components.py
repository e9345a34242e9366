import numpy as np
import pytest
import torch

import endofm
from endofm.ssl import DINOHead, Encoder, SSLMetaArch, forward_views
from endofm.ssl.data import epoch_order
from endofm.train import CosineScheduler

from .conftest import tiny_objective


def tiny_encoder():
    torch.manual_seed(0)
    backbone = endofm.create_model("endofm_vit_tiny_patch16", img_size=32, num_frames=2,
                                   embed_dim=48, depth=1, num_heads=4, drop_path_rate=0.1)
    return Encoder(backbone, DINOHead(48, 32, 64, 16))


def test_head_keys_match_release_and_last_norm_frozen():
    head = DINOHead(96, 512, 256, 64)
    keys = set(head.state_dict())
    assert {"mlp.0.weight", "mlp.2.weight", "mlp.4.weight", "last_layer.weight_g",
            "last_layer.weight_v"} <= keys
    assert not head.last_layer.weight_g.requires_grad
    assert head(torch.randn(3, 96)).shape == (3, 512)


def test_teacher_is_frozen_copy_without_drop_path():
    meta = SSLMetaArch(tiny_encoder(), tiny_objective())
    assert all(not p.requires_grad for p in meta.teacher.parameters())
    meta.train()
    assert not meta.teacher.training and meta.student.training
    assert all(getattr(m, "drop_prob", 0.0) == 0.0 for m in meta.teacher.modules())
    for a, b in zip(meta.teacher.parameters(), meta.student.parameters(), strict=True):
        assert torch.equal(a, b)


def test_ema_update():
    meta = SSLMetaArch(tiny_encoder(), tiny_objective())
    t0 = [p.clone() for p in meta.teacher.parameters()]
    with torch.no_grad():
        for p in meta.student.parameters():
            p.add_(1.0)
    meta.update_teacher(0.9)
    for before, t, s in zip(t0, meta.teacher.parameters(), meta.student.parameters(),
                            strict=True):
        torch.testing.assert_close(t, 0.9 * before + 0.1 * s)


def test_views_batched_by_shape_equal_separate_forwards():
    enc = tiny_encoder().eval()
    views = [torch.randn(2, 3, 2, 32, 32), torch.randn(2, 3, 4, 32, 32),
             torch.randn(2, 3, 2, 16, 16), torch.randn(2, 3, 2, 16, 16)]
    with torch.no_grad():
        batched = forward_views(enc, views)
        separate = [enc(v) for v in views]
    for a, b in zip(batched, separate, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_schedules():
    # the release's DINO warm-up: linspace(0, base, warmup) with both ends included
    lr = CosineScheduler(1.0, 0.0, total_iters=20, warmup_iters=5)
    assert len(lr) == 20
    np.testing.assert_allclose(lr.values[:5], [0, 0.25, 0.5, 0.75, 1.0])
    assert lr[5] == pytest.approx(1.0) and lr[19] < 0.02 and lr[20] == 0.0
    # cosine part: final + (base - final) / 2 * (1 + cos(pi * i / n)), hand-computed at i = n/2
    assert CosineScheduler(1.0, 0.2, 4)[2] == pytest.approx(0.6)
    m = CosineScheduler(0.996, 1.0, 6)
    assert m[0] == pytest.approx(0.996) and np.all(np.diff(m.values) >= 0)
    tt = CosineScheduler(0.04, 0.04, 6, warmup_iters=2, start_warmup_value=0.02)
    np.testing.assert_allclose(tt.values, [0.02, 0.04, 0.04, 0.04, 0.04, 0.04])


def test_epoch_order_is_seeded_and_sharded():
    a = epoch_order(10, 1, 0, 0, 1)
    assert sorted(a) == list(range(10)) and a == epoch_order(10, 1, 0, 0, 1)
    assert a != epoch_order(10, 2, 0, 0, 1)
    r0, r1 = epoch_order(5, 0, 0, 0, 2), epoch_order(5, 0, 0, 1, 2)
    assert len(r0) == len(r1) == 3 and set(r0) | set(r1) == set(range(5))
    weighted = epoch_order(6, 0, 0, 0, 1, torch.tensor([0, 0, 0, 0, 0, 1.0], dtype=torch.float64))
    assert weighted == [5] * 6


def test_meta_arch_forward_student_all_views_teacher_globals():
    meta = SSLMetaArch(tiny_encoder(), tiny_objective()).eval()
    views = [torch.randn(2, 3, 2, 32, 32), torch.randn(2, 3, 4, 32, 32),
             torch.randn(2, 3, 2, 16, 16)]
    out = meta.forward_plain(views)
    student, teacher = out.student, out.teacher
    assert len(student) == 3 and len(teacher) == 2
    assert not teacher[0].requires_grad and student[0].requires_grad
    torch.testing.assert_close(teacher[1], student[1])  # identical weights at start


@pytest.mark.parametrize("decay_embeddings", [False, True])
def test_no_weight_decay_rule(decay_embeddings):
    from endofm.train import no_weight_decay_names, param_groups, skips_weight_decay

    enc = tiny_encoder()
    groups = param_groups(enc, 0.04, decay_embeddings=decay_embeddings)
    no_decay = {id(p) for g in groups if g["wd_mult"] == 0 for p in g["params"]}
    decay = {id(p) for g in groups if g["wd_mult"] == 1 for p in g["params"]}
    named = dict(enc.named_parameters())
    trainable = {id(p) for p in named.values() if p.requires_grad}
    assert no_decay | decay == trainable and not no_decay & decay
    declared = no_weight_decay_names(enc)
    assert declared == {"backbone.pos_embed", "backbone.time_embed", "backbone.cls_token"}
    for name in ("backbone.norm.weight", "head.mlp.0.bias"):
        assert id(named[name]) in no_decay and skips_weight_decay(name, named[name], declared)
    for name in declared:  # the release (decay_embeddings) decays the tables and CLS token
        assert (id(named[name]) in decay) == decay_embeddings
    assert id(named["backbone.blocks.0.attn.qkv.weight"]) in decay


def test_merge_skips_keeps_every_rank_once_in_order():
    from endofm.ssl.data import merge_skips

    a, b, c = ({"path": p, "reason": "bad"} for p in ("a.mp4", "b.mp4", "c.mp4"))
    assert merge_skips([[a, b], [b, c], []]) == [a, b, c]
    assert merge_skips([[], [c]]) == [c]  # a skip seen only on rank 1 still reaches the report
