"""The bf16 inference copy's linear layers as oneDNN calls on prepacked weights: each agrees
with ``F.linear`` (and an MLP's fused GELU with ``gelu(linear)``) in bf16, the copy packs them
where oneDNN can and keeps ``nn.Linear`` where it cannot or the copy is to be compiled."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from timm.layers import Mlp

import endofm
from endofm.models.vision_transformer import GELU
from endofm.runner import RunnerSettings, WindowRunner
from endofm.runner import packed as packed_module
from endofm.runner.compile import FrozenCompiled
from endofm.runner.packed import PackedLinear, pack_linears, packing_available
from endofm.runner.precision import CastInference

needs_onednn = pytest.mark.skipif(not packing_available(),
                                  reason="this PyTorch's oneDNN runs no bf16 linear here")
TINY = dict(img_size=32, num_frames=4, embed_dim=96, depth=2, num_heads=4, drop_path_rate=0.0)


def close_in_bf16(got: torch.Tensor, want: torch.Tensor) -> bool:
    return float((got.float() - want.float()).abs().max()) <= 2**-6 * float(want.abs().max())


@needs_onednn
@torch.no_grad()
@pytest.mark.parametrize("shape", [(5, 48), (2, 7, 48), (1, 3, 4, 48)])
@pytest.mark.parametrize("bias", [True, False])
def test_a_packed_layer_is_its_linear_in_bf16(shape, bias):
    torch.manual_seed(0)
    layer = torch.nn.Linear(48, 24, bias=bias).to(torch.bfloat16)
    x = torch.randn(shape).to(torch.bfloat16)
    want = F.linear(x, layer.weight, layer.bias)
    got = PackedLinear(layer)(x)
    assert got.dtype == torch.bfloat16 and got.shape == want.shape
    assert close_in_bf16(got, want)
    assert close_in_bf16(PackedLinear(layer, gelu=True)(x), F.gelu(want))
    assert close_in_bf16(PackedLinear(layer)(x.float()), want)  # other dtypes are cast
    copied = copy.deepcopy(PackedLinear(layer, gelu=True))
    assert copied.gelu and torch.equal(copied(x), PackedLinear(layer, gelu=True)(x))


@needs_onednn
@torch.no_grad()
def test_an_mlp_fuses_its_exact_gelu_and_a_tanh_gelu_is_left_alone():
    torch.manual_seed(0)
    mlp = Mlp(32, 64, act_layer=GELU).to(torch.bfloat16).eval()
    x = torch.randn(3, 9, 32).to(torch.bfloat16)
    want = mlp(x.clone())
    assert pack_linears(mlp) == 2
    assert isinstance(mlp.act, torch.nn.Identity) and mlp.fc1.gelu and not mlp.fc2.gelu
    assert close_in_bf16(mlp(x), want)
    tanh = Mlp(32, 64, act_layer=lambda: torch.nn.GELU(approximate="tanh")).to(torch.bfloat16)
    pack_linears(tanh)
    assert isinstance(tanh.act, torch.nn.GELU) and not tanh.fc1.gelu


@needs_onednn
def test_the_cast_copy_packs_unless_asked_not_to_or_to_be_compiled():
    model = endofm.create_model("endofm_vit_tiny_patch16", **TINY).eval()
    x = torch.randn(2, 3, 4, 32, 32)
    packed, plain = CastInference(model), CastInference(model, pack=False)
    kinds = {type(m) for m in packed.modules()}
    assert PackedLinear in kinds and torch.nn.Linear not in kinds
    assert torch.nn.Linear in {type(m) for m in plain.modules()}
    with torch.inference_mode():
        assert F.cosine_similarity(packed(x), plain(x)).min() > 0.9999
    runner = WindowRunner(RunnerSettings("cpu", "bf16", compile=True))
    compiled = runner.model_call(runner.place(model))
    assert isinstance(compiled, FrozenCompiled)
    assert PackedLinear not in {type(m) for m in compiled.compiled._orig_mod.modules()}
    eager = WindowRunner(RunnerSettings("cpu", "bf16"))
    assert PackedLinear in {type(m) for m in eager.model_call(eager.place(model)).modules()}


class MissingOp(PackedLinear):
    def __init__(self, *args, **kwargs):
        raise AttributeError("'_OpNamespace' 'mkldnn' object has no attribute")


@pytest.mark.parametrize("breakage", ["no oneDNN", "an older PyTorch without the ops"])
def test_without_onednn_bf16_the_copy_keeps_its_linear_layers(monkeypatch, breakage):
    packed_module.packing_available.cache_clear()
    if breakage == "no oneDNN":
        monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    else:
        monkeypatch.setattr(packed_module, "PackedLinear", MissingOp)
    try:
        assert not packing_available()
        model = endofm.create_model("endofm_vit_tiny_patch16", **TINY).eval()
        assert PackedLinear not in {type(m) for m in CastInference(model).modules()}
    finally:
        packed_module.packing_available.cache_clear()
