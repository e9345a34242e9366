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
