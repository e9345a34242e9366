"""``--compile`` for inference: inductor with freezing gives the eager features."""

import pytest
import torch

import endofm
from endofm.inference.backbone import FeatureExtractor
from endofm.models.vision_transformer import attention_layers
from endofm.runner.compile import FrozenCompiled, explicit_attention, maybe_compile

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


def _tiny(depth=2):
    torch.manual_seed(0)
    return endofm.create_model("endofm_vit_tiny_patch16", img_size=32, num_frames=2,
                               depth=depth, embed_dim=64, num_heads=2).eval()


class _Spy(torch.nn.Module):
    """Stands in for the compiled module: records the attention form each call sees."""

    def __init__(self, layers):
        super().__init__()
        self.layers, self.seen = layers, []

    def forward(self, x):
        self.seen.append([layer.explicit for layer in self.layers])
        return x


@pytest.mark.parametrize(("device", "precision", "matmuls"), [
    ("cpu", "bf16", True), ("cpu", "fp32", False), ("cuda", "bf16", False)])
def test_compiled_attention_form_is_chosen_per_device_and_precision(device, precision,
                                                                   matmuls):
    """On a CPU in bf16 the compiled forward traces attention as matmuls (inductor fuses them;
    SDPA's CPU flash kernel is the slower there), only within each call."""
    extractor = FeatureExtractor(_tiny(), "cls")
    compiled = maybe_compile(extractor, True, torch.device(device), precision)
    layers = attention_layers(extractor)
    assert len(layers) == 4 and compiled.matmul_attention is matmuls
    compiled.compiled = _Spy(layers)
    compiled(torch.zeros(1))
    assert compiled.compiled.seen == [[matmuls] * 4]
    assert not any(layer.explicit for layer in layers)


def test_explicit_attention_restores_each_layer_even_on_error():
    layers = attention_layers(_tiny())
    layers[0].explicit = True  # a layer already explicit stays so
    with pytest.raises(RuntimeError), explicit_attention(layers):
        assert all(layer.explicit for layer in layers)
        raise RuntimeError
    assert [layer.explicit for layer in layers] == [True, False, False, False]


def test_compiled_bf16_matmul_attention_keeps_the_fp32_features():
    """The bf16 bar (cosine ≥ 0.99 with the fp32 features) for the compiled form too."""
    extractor = FeatureExtractor(_tiny(), "cls")
    compiled = maybe_compile(extractor, True, torch.device("cpu"), "bf16")
    x = torch.randn(2, 3, 2, 32, 32)
    with torch.inference_mode():
        reference = extractor(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = compiled(x).float()
    assert not any(layer.explicit for layer in attention_layers(extractor))
    assert torch.nn.functional.cosine_similarity(out, reference).min() >= 0.99


@pytest.mark.parametrize(("precision", "sdpa_calls"), [("bf16", False), ("fp32", True)])
def test_the_compiled_graph_calls_sdpa_only_where_chosen(precision, sdpa_calls):
    """The real compiled forward (not a stand-in): in bf16 on a CPU no SDPA kernel runs."""
    from torch.profiler import ProfilerActivity, profile

    extractor = FeatureExtractor(_tiny(depth=1), "cls")
    compiled = maybe_compile(extractor, True, torch.device("cpu"), precision)
    x = torch.randn(1, 3, 2, 32, 32)
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16,
                                                enabled=precision == "bf16"):
        compiled(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            compiled(x)
    names = {event.key for event in prof.key_averages()}
    assert any("scaled_dot_product" in name for name in names) is sdpa_calls, sorted(names)


def test_the_runner_compiles_the_bf16_copy_and_keeps_the_fp32_features():
    """``--compile --precision bf16`` on a CPU: the compiled forward is the bf16 copy's (its
    weights, frozen, are bf16) and it keeps the bf16 bar against fp32."""
    from endofm.runner import RunnerSettings, WindowRunner
    from endofm.runner.precision import CastInference

    extractor = FeatureExtractor(_tiny(), "cls")
    runner = WindowRunner(RunnerSettings("cpu", "bf16", batch_size=2, compile=True))
    compiled = runner.model_call(extractor)
    assert isinstance(compiled.compiled._orig_mod, CastInference)
    x = torch.randn(2, 3, 2, 32, 32)
    with torch.inference_mode():
        reference = extractor(x)
        out = runner.call(compiled, x)
    assert out.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(out, reference).min() >= 0.99
    assert all(p.dtype == torch.float32 for p in extractor.parameters())
