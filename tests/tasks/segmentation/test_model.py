from pathlib import Path

import pytest
import torch

from endofm.models import BackboneConfig, VisionTransformer, create_backbone, safe_load
from endofm.tasks.segmentation.model import (
    HybridSegmenter,
    SegmentationModelConfig,
    ViTSegmenter,
    build_segmenter,
)

TINY_STEM = dict(stem_width=8, stem_layers=[1, 1, 1], stem_channels=[16, 32, 64], gn_groups=4,
                 decoder_hidden=32, decoder_channels=[16, 8, 8, 4])


def _backbone() -> VisionTransformer:
    torch.manual_seed(0)
    return VisionTransformer(img_size=32, embed_dim=96, depth=2, num_heads=4, num_frames=2,
                             drop_path_rate=0.0)


def _grad_norm(module: torch.nn.Module) -> float:
    grads = [p.grad.abs().sum() for p in module.parameters() if p.grad is not None]
    return float(sum(grads)) if grads else 0.0


def test_hybrid_shapes_and_gradients():
    model = HybridSegmenter(_backbone(), num_classes=2, img_size=32, **TINY_STEM)
    x = torch.randn(2, 3, 3, 32, 48)  # T and width differ from the tables: resized
    out = model(x)
    assert out.shape == (2, 2, 3, 32, 48)
    out.square().mean().backward()
    for part in (model.stem, model.proj, model.backbone.blocks, model.decoder, model.head):
        assert _grad_norm(part) > 0
    for p in (model.pos_embed, model.backbone.time_embed, model.backbone.cls_token):
        assert p.grad is not None


def test_hybrid_grad_checkpointing_gives_the_same_gradients():
    model = HybridSegmenter(_backbone(), img_size=32, **TINY_STEM)
    x = torch.randn(1, 3, 2, 32, 32)
    grads = []
    for enable in (False, True):
        model.zero_grad()
        model.backbone.set_grad_checkpointing(enable)
        model(x).sum().backward()
        grads.append(model.backbone.blocks[0].attn.qkv.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_vit_variant_shapes_and_gradients():
    model = ViTSegmenter(_backbone(), num_classes=2, layers=(0, 1), decoder_channels=(16, 8, 8, 4))
    out = model(torch.randn(1, 3, 2, 32, 32))
    assert out.shape == (1, 2, 2, 32, 32)
    out.square().mean().backward()
    for part in (model.backbone.patch_embed, model.backbone.blocks, model.fuse, model.ups,
                 model.head):
        assert _grad_norm(part) > 0


def test_bad_sizes_are_errors():
    model = HybridSegmenter(_backbone(), img_size=32, **TINY_STEM)
    with pytest.raises(ValueError, match="multiple of 16"):
        model(torch.randn(1, 3, 2, 40, 32))
    with pytest.raises(ValueError, match="layers"):
        ViTSegmenter(_backbone(), layers=(5,))


def test_a_space_only_backbone_is_refused_when_built():
    """``space_only`` averages the frames' tokens: both variants refuse it with the reason
    when built (the ViT variant failed at its first forward, inside the backbone)."""
    backbone = VisionTransformer(img_size=32, embed_dim=96, depth=2, num_heads=4, num_frames=2,
                                 attention_type="space_only")
    with pytest.raises(ValueError, match="the hybrid segmenter needs each frame's own tokens"):
        HybridSegmenter(backbone, img_size=32, **TINY_STEM)
    with pytest.raises(ValueError, match="the ViT segmenter needs each frame's own tokens"):
        ViTSegmenter(backbone, layers=(0, 1))


ASSET = Path(__file__).parents[2] / "assets" / "endofm_reference_tiny" / "endo_fm_tiny.pth"


@pytest.mark.parametrize("variant", ["hybrid", "vit"])
def test_build_from_released_checkpoint(variant):
    cfg = SegmentationModelConfig(
        variant=variant, backbone=BackboneConfig("endofm_vit_tiny_patch16", str(ASSET), 32, 2,
                                                 num_heads=4), vit_layers=[0, 1], **TINY_STEM)
    backbone = create_backbone(cfg.backbone)
    assert (backbone.embed_dim, len(backbone.blocks)) == (96, 2)  # from the checkpoint
    model = build_segmenter(cfg, backbone, img_size=32)
    ref = safe_load(ASSET)["teacher"]
    qkv = "blocks.1.attn.qkv.weight"
    own = dict(model.named_parameters())
    torch.testing.assert_close(own[f"backbone.{qkv}"], ref[f"backbone.{qkv}"])
    assert model(torch.randn(1, 3, 2, 32, 32)).shape == (1, 2, 2, 32, 32)
    with pytest.raises(ValueError, match="variant"):
        build_segmenter(SegmentationModelConfig(variant="unet"), backbone, 32)
