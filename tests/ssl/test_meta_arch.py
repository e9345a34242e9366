"""The pre-training step's owner: ``SSLMetaArch`` turns a batch of views into named loss terms
whose sum is the loss the trainer backpropagates."""

import copy

import pytest
import torch

import endofm
from endofm.config import load_config, recipe_path
from endofm.ssl import DINOHead, Encoder, PretrainConfig, SSLMetaArch, STLoss
from endofm.ssl.koleo import koleo_loss
from endofm.ssl.trainer import PretrainTrainer
from endofm.utils.distributed import init_distributed

from .conftest import tiny_objective

VIEWS = [torch.randn(3, 3, 2, 64, 64, generator=torch.Generator().manual_seed(1)),
         torch.randn(3, 3, 4, 64, 64, generator=torch.Generator().manual_seed(2)),
         torch.randn(3, 3, 2, 32, 32, generator=torch.Generator().manual_seed(3))]
IBOT = {"ibot_weight": 0.5, "ibot_mask_probability": 1.0, "ibot_mask_ratio": [0.3, 0.5]}
KOLEO = {"koleo_weight": 0.1}


def tiny_meta(**loss) -> SSLMetaArch:
    torch.manual_seed(0)
    ibot = loss.get("ibot_weight", 0) > 0
    backbone = endofm.create_model("endofm_vit_tiny_patch16", img_size=32, num_frames=2,
                                   embed_dim=48, depth=1, num_heads=4, drop_path_rate=0.0,
                                   use_mask_token=ibot)
    return SSLMetaArch(Encoder(backbone, DINOHead(48, 32, 64, 16)),
                       tiny_objective(**loss)).train()


@pytest.mark.parametrize(("loss", "names"), [
    ({}, {"dino"}), (IBOT, {"dino", "ibot"}), (KOLEO, {"dino", "koleo"}),
    (IBOT | KOLEO, {"dino", "ibot", "koleo"})], ids=["release", "ibot", "koleo", "all"])
def test_a_step_returns_its_named_terms_and_their_sum(loss, names):
    step = tiny_meta(**loss)(VIEWS, 0.04, torch.Generator().manual_seed(0))
    terms = step.loss.terms
    assert set(terms) == names
    assert all(t.ndim == 0 and t.requires_grad for t in terms.values())
    torch.testing.assert_close(step.loss.total, sum(terms.values()), rtol=0, atol=0)
    logs = step.loss.logs
    assert {"l_cv", "l_dm", "teacher_entropy", "kl"} <= set(logs)
    assert ("dino_loss" in logs) == (names != {"dino"})
    for name, weight in (("ibot", 0.5), ("koleo", 0.1)):  # weighted in the sum, not in the log
        if name in names:
            torch.testing.assert_close(terms[name].detach(), weight * logs[name])
    if "ibot" in names:
        assert logs["ibot"] > 0  # every global crop masked: the patch term is taken
    assert len(step.teacher) == 2 and not any(t.requires_grad for t in step.teacher)
    assert len(step.teacher_cls) == (0 if names == {"dino"} else 2)


def test_the_terms_are_the_dino_loss_and_koleo_of_the_students_clip_embeddings():
    meta = tiny_meta(**KOLEO)
    reference = copy.deepcopy(meta)
    step = meta(VIEWS, 0.04, torch.Generator().manual_seed(0))
    with torch.no_grad():
        plain = reference.forward_plain(VIEWS)
        dino = STLoss(32)(plain.student, plain.teacher, 0.04)["loss"]
        koleo = sum(koleo_loss(reference.student.backbone(v)) for v in VIEWS[:2])
    torch.testing.assert_close(step.loss.terms["dino"].detach(), dino)
    torch.testing.assert_close(step.loss.terms["koleo"].detach(), 0.1 * koleo)
    # the running centre moved after the loss; the step reports the one it centred with
    assert torch.equal(step.teacher_center, torch.zeros(1, 32))
    assert meta.objective.dino.center.abs().sum() > 0


def test_masks_follow_the_generator_and_hide_nothing_without_ibot():
    meta = tiny_meta(**IBOT)
    draw = [meta.draw_masks(VIEWS[:2], torch.Generator().manual_seed(s)) for s in (0, 0, 1)]
    assert [tuple(m.shape) for m in draw[0]] == [(3, 4 * 4 * 2), (3, 4 * 4 * 4)]
    assert all(torch.equal(a, b) for a, b in zip(draw[0], draw[1], strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(draw[0], draw[2], strict=True))
    none = tiny_meta(**KOLEO).draw_masks(VIEWS[:2], torch.Generator().manual_seed(0))
    assert not any(m.any() for m in none)


def test_the_trainer_backpropagates_the_meta_archs_total(sample_data, tmp_path, monkeypatch):
    cfg = load_config(PretrainConfig, recipe_path("pretrain", "tiny"), [
        "model.backbone.depth=1", "head.out_dim=64", "head.hidden_dim=64",
        "head.bottleneck_dim=16", "loss.ibot_weight=0.5", "loss.koleo_weight=0.1",
        "train.device=cpu", "train.progress=false"])
    trainer = PretrainTrainer(cfg, sample_data["videos"], tmp_path, init_distributed("cpu"))
    steps, backpropagated = [], []
    forward = trainer.meta.forward
    monkeypatch.setattr(trainer.meta, "forward", lambda *a: steps.append(forward(*a)) or steps[-1])
    backward = trainer.stepper.backward
    monkeypatch.setattr(trainer.stepper, "backward",
                        lambda loss: backpropagated.append(loss) or backward(loss))
    views, _ = next(iter(trainer.loader()))
    logged = trainer.train_step(views)
    (step,), (loss,) = steps, backpropagated
    assert set(step.loss.terms) == {"dino", "ibot", "koleo"}
    assert loss is step.loss.total
    assert logged["loss"] == pytest.approx(sum(t.item() for t in step.loss.terms.values()))
    assert logged["loss"] == pytest.approx(
        logged["dino_loss"] + 0.5 * logged["ibot"] + 0.1 * logged["koleo"])


def test_compiling_the_encoder_compiles_both_entry_points(monkeypatch):
    """``model.compile=true`` reaches the masked forward of iBOT / KoLeo training too."""
    compiled = []

    def fake_compile(fn, **kwargs):
        compiled.append((getattr(fn, "__name__", ""), kwargs))
        return fn

    monkeypatch.setattr(torch, "compile", fake_compile)
    encoder = tiny_meta(**IBOT).student
    encoder.compile(dynamic=False)
    assert sorted(compiled) == [("_call_impl", {"dynamic": False}),
                                ("forward_masked", {"dynamic": False})]
