"""Pyramid and head shapes; gradients reach the backbone only when it is trainable."""

import pytest
import torch

from endofm.models import BackboneConfig
from endofm.tasks.detection.model import (
    DetectionModelConfig,
    SimplePyramid,
    build_detector,
)

TINY = {"pyramid_channels": 32, "min_size": 64, "max_size": 64}


def tiny(**kw) -> DetectionModelConfig:
    backbone = BackboneConfig("endofm_vit_tiny_patch16", img_size=64, num_frames=3, embed_dim=96,
                              depth=2, num_heads=4, drop_path_rate=0.0)
    return DetectionModelConfig(backbone=backbone, **(TINY | kw))


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


LOSS_KEYS = {"fcos": {"classification", "bbox_regression", "bbox_ctrness"},
             "retinanet": {"classification", "bbox_regression"},
             "faster_rcnn": {"loss_classifier", "loss_box_reg", "loss_objectness",
                             "loss_rpn_box_reg"}}


def favour_label(model, head: str, label: int) -> None:
    """Set the classifier so that every location scores class ``label`` (1..2) high and the
    other low, by hand: sigmoid heads have one logit per class (index label - 1, per anchor
    for RetinaNet); Faster R-CNN has a softmax over background (index 0) and the classes."""
    if head == "faster_rcnn":
        layer, num_anchors, index = model.detector.roi_heads.box_predictor.cls_score, 1, label
    else:
        layer = model.detector.head.classification_head.cls_logits
        num_anchors, index = layer.out_channels // 2, label - 1
    with torch.no_grad():
        layer.weight.zero_()
        bias = torch.full((num_anchors, layer.bias.numel() // num_anchors), -10.0)
        bias[:, index] = 10.0
        layer.bias.copy_(bias.flatten())


@pytest.mark.parametrize("head", ["fcos", "retinanet", "faster_rcnn"])
def test_heads_train_and_predict(head):
    torch.manual_seed(0)
    model = build_detector(tiny(head=head), num_frames=3)
    clips, targets = sample()
    losses = model(clips, targets)
    assert set(losses) == LOSS_KEYS[head]
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    model.eval()
    for label in (1, 2):
        favour_label(model, head, label)
        with torch.no_grad():
            out = model(clips)
        assert len(out) == 2
        for o in out:
            assert len(o["boxes"]) > 0 and set(o["labels"].tolist()) == {label}
    # the same frames at twice the size reach the head identically (the detector resizes them
    # back to 64 px, and bilinear halving undoes a nearest doubling exactly): the boxes come
    # back doubled, in the input's pixels
    big = [c.repeat_interleave(2, dim=-1).repeat_interleave(2, dim=-2) for c in clips]
    with torch.no_grad():
        small_out, big_out = model(clips), model(big)
    for s, b, clip in zip(small_out, big_out, big, strict=True):
        torch.testing.assert_close(b["scores"], s["scores"], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(b["boxes"], 2 * s["boxes"], atol=1e-2, rtol=1e-4)
        assert float(b["boxes"][:, 2].max()) <= clip.shape[-1] + 1e-3


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


@pytest.mark.parametrize("attention_type", ["divided_space_time", "joint_space_time"])
def test_backbones_with_per_frame_tokens_build(attention_type):
    cfg = tiny()
    cfg.backbone.attention_type = attention_type
    assert build_detector(cfg, num_frames=3).backbone.attention_type == attention_type


def test_a_space_only_backbone_is_refused_when_built():
    """``space_only`` averages the frames' tokens, so there is no target frame to detect in:
    refused with the reason when the model is built, not at the first forward."""
    cfg = tiny()
    cfg.backbone.attention_type = "space_only"
    with pytest.raises(ValueError, match="the detector needs each frame.s own tokens"):
        build_detector(cfg, num_frames=3)
