"""Eager bf16 inference on a CPU runs a bf16 copy of the model: its LayerNorm, softmax and
whole forward agree with fp32, the original model is untouched, and the runner's model seam
hands the copy to every command."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import endofm
from endofm.runner import RunnerSettings, WindowRunner
from endofm.runner.compile import FrozenCompiled
from endofm.runner.packed import PackedLinear
from endofm.runner.precision import CastInference, casts_weights, inference_module

BF16_EPS = 2.0**-8  # bf16 keeps 8 significant bits
TINY = dict(img_size=32, num_frames=4, embed_dim=96, depth=2, num_heads=4, drop_path_rate=0.0)


def within_bf16_rounding(got: torch.Tensor, want: torch.Tensor, ulps: float = 2.0) -> bool:
    """``got`` (bf16) within ``ulps`` bf16 steps of ``want`` (fp32), relative to its scale."""
    return float((got.float() - want).abs().max()) <= ulps * BF16_EPS * float(want.abs().max())


def linear_weight_dtypes(module: torch.nn.Module, *args: torch.Tensor) -> set[torch.dtype]:
    """The dtypes of the weights of every linear layer (``nn.Linear`` or
    :class:`PackedLinear`) that runs in ``module(*args)``."""
    seen: set[torch.dtype] = set()

    def record(layer: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if isinstance(layer, torch.nn.Linear | PackedLinear):
            seen.add(layer.weight.dtype)

    handle = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        with torch.inference_mode():
            module(*args)
    finally:
        handle.remove()
    return seen


@torch.no_grad()
def test_layernorm_and_softmax_in_bf16_match_fp32():
    torch.manual_seed(0)
    x = (torch.randn(4, 197, 192) * 3 + 1).bfloat16()
    norm = torch.nn.LayerNorm(192)
    torch.nn.init.normal_(norm.weight, 1.0, 0.1)
    want = norm(x.float())
    assert within_bf16_rounding(norm.bfloat16()(x), want)
    logits = torch.randn(4, 3, 197, 197).bfloat16() * 4
    assert within_bf16_rounding(logits.softmax(-1), logits.float().softmax(-1))
    q, k, v = (torch.randn(2, 3, 197, 64).bfloat16() for _ in range(3))
    assert within_bf16_rounding(F.scaled_dot_product_attention(q, k, v),
                                F.scaled_dot_product_attention(q.float(), k.float(), v.float()),
                                ulps=4)


def test_the_cast_copy_agrees_with_fp32_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model = endofm.create_model("endofm_vit_tiny_patch16", **TINY).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(3, 3, 4, 32, 32)
    cast = CastInference(model)
    with torch.inference_mode():
        want, got = model(x), cast(x)
    assert got.dtype == torch.float32 and got.shape == want.shape
    assert F.cosine_similarity(got, want).min() > 0.999
    assert all(p.dtype == torch.bfloat16 for p in cast.parameters())
    assert linear_weight_dtypes(cast, x) == {torch.bfloat16}
    assert linear_weight_dtypes(model, x) == {torch.float32}
    for name, value in model.state_dict().items():
        assert value.dtype == torch.float32 and torch.equal(value, before[name]), name


def test_outputs_keep_their_structure_and_only_floats_return_to_fp32():
    class Detections(torch.nn.Module):
        def forward(self, x):
            return [{"boxes": x.bfloat16(), "labels": torch.ones(2, dtype=torch.int64)}]

    out = CastInference(Detections())(torch.zeros(2, 4))
    assert out[0]["boxes"].dtype == torch.float32 and out[0]["labels"].dtype == torch.int64


def test_bf16_on_a_cpu_is_the_only_setting_that_casts():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert casts_weights(cpu, "bf16")
    assert not any(casts_weights(d, p) for d, p in ((cpu, "fp32"), (cuda, "bf16"),
                                                    (cuda, "fp16")))
    module = torch.nn.Linear(2, 2)
    assert inference_module(module, cpu, "fp32") is module
    assert isinstance(inference_module(module, cpu, "bf16"), CastInference)


@pytest.mark.parametrize("compile", [False, True])
def test_the_runner_calls_the_cast_copy_in_bf16_and_the_model_itself_in_fp32(compile):
    model = endofm.create_model("endofm_vit_tiny_patch16", **TINY)
    fp32 = WindowRunner(RunnerSettings("cpu", "fp32", compile=compile))
    bf16 = WindowRunner(RunnerSettings("cpu", "bf16", compile=compile))
    plain, cast = fp32.model_call(fp32.place(model)), bf16.model_call(bf16.place(model))
    if compile:  # the compiled module is the cast copy's (read, not run: compiling is slow)
        assert isinstance(plain, FrozenCompiled) and isinstance(cast, FrozenCompiled)
        plain, cast = plain.compiled._orig_mod, cast.compiled._orig_mod
    assert plain is model and isinstance(cast, CastInference)
    x = torch.randn(2, 3, 4, 32, 32)
    assert linear_weight_dtypes(cast, x) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in model.parameters())
