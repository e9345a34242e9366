"""Pyramid and head shapes; gradients reach the backbone only when it is trainable."""

import pytest
import torch

from endofm.tasks.detection.model import (
    DetectionModelConfig,
    SimplePyramid,
    build_detector,
)

TINY = {"backbone": "endofm_vit_tiny_patch16", "embed_dim": 96, "depth": 2, "num_heads": 4,
        "pyramid_channels": 32, "min_size": 64, "max_size": 64, "drop_path_rate": 0.0}


def tiny(**kw) -> DetectionModelConfig:
    return DetectionModelConfig(**(TINY | kw))


def sample(seed: int = 0) -> tuple[list[torch.Tensor], list[dict]]:
    g = torch.Generator().manual_seed(seed)
    clips = [torch.rand(3, 3, 64, 64, generator=g), torch.rand(3, 3, 48, 64, generator=g)]
    targets = [{"boxes": torch.tensor([[8.0, 8.0, 30.0, 28.0]]), "labels": torch.tensor([1])},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}]
    return clips, targets


def test_pyramid_strides():
    levels = SimplePyramid(96, 32)(torch.rand(2, 96, 4, 6))
    assert list(levels) == ["0", "1", "2", "3"]
    assert [tuple(v.shape) for v in levels.values()] == [
        (2, 32, 8, 12), (2, 32, 4, 6), (2, 32, 2, 3), (2, 32, 1, 2)]


@pytest.mark.parametrize("head", ["fcos", "retinanet", "faster_rcnn"])
def test_heads_train_and_predict(head):
    torch.manual_seed(0)
    model = build_detector(tiny(head=head), num_frames=3)
    clips, targets = sample()
    losses = model(clips, targets)
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        out = model(clips)
    assert len(out) == 2
    for o, clip in zip(out, clips, strict=True):
        n = len(o["boxes"])
        assert o["boxes"].shape == (n, 4) and o["scores"].shape == (n,)
        assert o["labels"].shape == (n,)
        if n:
            assert int(o["labels"].min()) >= 1 and int(o["labels"].max()) <= 2
            assert float(o["boxes"][:, 2].max()) <= clip.shape[-1] + 1e-3


@pytest.mark.parametrize("frozen", [False, True])
def test_gradients_reach_backbone_only_when_trainable(frozen):
    torch.manual_seed(0)
    model = build_detector(tiny(), num_frames=3)
    model.backbone.requires_grad_(not frozen)  # as the engine's train.freeze_backbone
    clips, targets = sample()
    sum(model(clips, targets).values()).backward()
    vit_grads = [p.grad for p in model.backbone.parameters()]
    if frozen:
        assert all(g is None for g in vit_grads)
    else:
        assert any(g is not None and g.abs().sum() > 0 for g in vit_grads)
    assert model.detector.backbone.pyramid.necks[0][0][0].weight.grad.abs().sum() > 0


def test_backbone_weights_stored_once():
    model = build_detector(tiny(), num_frames=3)
    keys = list(model.state_dict())
    assert any(k.startswith("backbone.blocks.") for k in keys)
    assert not any(".vit." in k for k in keys)
    assert {id(p) for _, p in model.named_parameters()} >= {
        id(p) for p in model.detector.backbone.vit.parameters()}


def test_bad_clip_and_head_are_errors():
    model = build_detector(tiny(), num_frames=3)
    with pytest.raises(ValueError, match="clip"):
        model([torch.rand(3, 2, 64, 64)])
    with pytest.raises(ValueError, match="head"):
        build_detector(tiny(head="yolo"), num_frames=3)
