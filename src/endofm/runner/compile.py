"""``--compile`` for inference: ``torch.compile`` (inductor) with the weights frozen as
constants, for any module the runner calls."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from endofm.models import Attention
from endofm.models.vision_transformer import attention_layers


class FrozenCompiled(nn.Module):
    """``torch.compile`` of an inference-only ``module`` with inductor's freezing: weights are
    folded in as constants (on CPU pre-packed for oneDNN/MKL, GELU fused into its GEMM), valid
    because inference never changes them. Shapes are fixed (callers pad the last batch).
    Freezing is read when a graph is compiled, i.e. inside a call, so every call runs under
    it.

    ``matmul_attention``: the attention layers are traced in their matmul → softmax → matmul
    form (:func:`explicit_attention`) for inductor to fuse around its GEMMs, instead of as one
    ``scaled_dot_product_attention`` call (:func:`compiled_matmul_attention`). The form is set
    within every call (it is a traced, guarded attribute), so the module's own setting is back
    after each call.
    """

    def __init__(self, module: nn.Module, matmul_attention: bool = False) -> None:
        super().__init__()
        self.compiled = torch.compile(module, dynamic=False)
        self.attention_layers = attention_layers(module) if matmul_attention else []

    @property
    def matmul_attention(self) -> bool:
        """Whether attention is traced as matmuls (there are layers to switch)."""
        return bool(self.attention_layers)

    def forward(self, *args: Tensor) -> Tensor:
        from torch._inductor import config as inductor_config  # imports inductor: only here

        with inductor_config.patch(freezing=True), explicit_attention(self.attention_layers):
            return self.compiled(*args)


@contextmanager
def explicit_attention(layers: Sequence[Attention]) -> Iterator[None]:
    """Inside the block ``layers`` compute softmax(q kᵀ · scale) v with plain matmuls
    (``Attention.explicit``); each layer's own setting is restored on leaving."""
    before = [layer.explicit for layer in layers]
    for layer in layers:
        layer.explicit = True
    try:
        yield
    finally:
        for layer, value in zip(layers, before, strict=True):
            layer.explicit = value


def compiled_matmul_attention(device: torch.device, precision: str) -> bool:
    """Whether a compiled forward should trace attention as matmuls rather than SDPA: on a CPU in
    bf16. There SDPA's flash kernel took 2.4-3x the time of plain matmuls on ViT-B/16 shapes
    (spatial 12.7 vs 5.4 ms, temporal 6.5 vs 2.2 ms a layer; AVX512-BF16, 2 threads) and the
    compiled forward came to 1.00-1.01x its GEMMs' time instead of 1.11-1.12x
    (``benchmarks/backbone.py --compile``, README); in fp32 SDPA was the faster (1.10x against
    1.16x), and on CUDA SDPA's fused kernels are the point."""
    return device.type == "cpu" and precision == "bf16"


def maybe_compile(module: nn.Module, enable: bool, device: torch.device | None = None,
                  precision: str = "fp32") -> nn.Module:
    """:class:`FrozenCompiled` ``module`` when ``enable`` (attention traced as matmuls where
    :func:`compiled_matmul_attention` says so for ``device`` and ``precision``), else
    ``module`` itself."""
    if not enable:
        return module
    device = device if device is not None else torch.device("cpu")
    return FrozenCompiled(module, compiled_matmul_attention(device, precision))
