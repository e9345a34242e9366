"""``--compile`` for inference: inductor with freezing gives the eager features."""

import pytest
import torch

import endofm
from endofm.inference.backbone import FeatureExtractor, FrozenCompiled, maybe_compile

pytestmark = pytest.mark.slow


def test_frozen_compiled_extractor_matches_eager():
    torch.manual_seed(0)
    backbone = endofm.create_model("endofm_vit_tiny_patch16", img_size=32, num_frames=2,
                                   depth=2, embed_dim=64, num_heads=2).eval()
    extractor = FeatureExtractor(backbone, "cls")
    compiled = maybe_compile(extractor, True)
    assert isinstance(compiled, FrozenCompiled) and maybe_compile(extractor, False) is extractor
    x = torch.randn(2, 3, 2, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(compiled(x), extractor(x), rtol=1e-4, atol=1e-5)


def test_compiled_weights_are_frozen_constants():
    """Freezing pre-packs the linear layers' weights at compile time (CPU): changing them
    afterwards does not change the compiled forward, which without freezing reads the live
    weights."""
    backbone = endofm.create_model("endofm_vit_tiny_patch16", img_size=32, num_frames=2,
                                   depth=1, embed_dim=64, num_heads=2).eval()
    compiled = maybe_compile(backbone, True)
    x = torch.randn(1, 3, 2, 32, 32)
    with torch.inference_mode():
        before = compiled(x).clone()
    with torch.no_grad():
        for layer in backbone.modules():
            if isinstance(layer, torch.nn.Linear):
                layer.weight.mul_(2.0)
    with torch.inference_mode():
        torch.testing.assert_close(compiled(x), before)
        assert not torch.allclose(backbone(x), before)
