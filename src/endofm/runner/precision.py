"""Eager bf16 inference on a CPU: the weights cast once instead of at every call.

Autocast keeps fp32 weights and casts each ``nn.Linear``'s weight to bf16 again in every
forward (``aten::copy_``: about a fifth of a ViT-B/16 8x224 forward on 2 cores). For
inference the weights never change, so :class:`CastInference` holds a bf16 copy of the model
and runs it under bf16 autocast: the ops autocast runs in bf16 (linear, conv, matmul,
attention) find their weights already bf16 and cast nothing, the rest (LayerNorm, softmax:
PyTorch's CPU kernels accumulate bf16 in fp32) take the bf16 activations with bf16 weights,
and what autocast keeps in fp32 stays fp32. The inputs are passed as they are (a detector's
normalisation and box decoding see fp32 images, as under autocast) and floating-point outputs
come back as fp32. Its linear layers run as oneDNN calls on prepacked weights
(:mod:`endofm.runner.packed`). ``tests/runner/test_precision.py`` checks LayerNorm, softmax
and the whole forward against fp32.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from endofm.runner.packed import pack_linears, packing_available

CAST_DTYPE = torch.bfloat16


def casts_weights(device: torch.device, precision: str) -> bool:
    """Whether an inference forward on ``device`` in ``precision`` uses a cast copy: bf16 on
    the CPU. On CUDA autocast is kept: casting a ViT-B's weights is one pass over 350 MB
    (about 0.1 ms of a multi-millisecond forward at GPU bandwidth), and fp16 needs autocast's
    fp32 LayerNorm and softmax; ``benchmarks/gpu.sh`` times both in bf16."""
    return device.type == "cpu" and precision == "bf16"


def _as_fp32(value: Any) -> Any:
    """Floating-point tensors of ``value`` (a tensor, or a list/tuple/dict of them) as
    float32; anything else unchanged."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, (list, tuple)):
        return type(value)(_as_fp32(v) for v in value)
    if isinstance(value, dict):
        return type(value)((k, _as_fp32(v)) for k, v in value.items())
    return value


class CastInference(nn.Module):
    """A bf16 copy of ``module`` (the original is left as it is) for inference, run under
    bf16 autocast on ``device_type``: no weight is cast per call, floating-point outputs
    return as fp32. Same signature and outputs as ``module``. ``pack``: on a CPU, its linear
    layers as oneDNN calls on prepacked weights (:mod:`endofm.runner.packed`) where this
    PyTorch runs them; ``torch.compile`` packs its own, so a copy to compile is not packed."""

    def __init__(self, module: nn.Module, device_type: str = "cpu", pack: bool = True) -> None:
        super().__init__()
        self.module = copy.deepcopy(module).to(CAST_DTYPE).eval()
        self.device_type = device_type
        if pack and device_type == "cpu" and packing_available():
            pack_linears(self.module)

    def forward(self, *args: Any) -> Any:
        with torch.autocast(self.device_type, dtype=CAST_DTYPE):
            out = self.module(*args)
        return _as_fp32(out)


def inference_module(module: nn.Module, device: torch.device, precision: str,
                     pack: bool = True) -> nn.Module:
    """``module`` as an inference forward in ``precision`` on ``device`` should run it: a
    :class:`CastInference` copy where :func:`casts_weights` (``pack``: its linear layers
    prepacked; not for a module to compile), else ``module`` itself (run under
    :func:`endofm.utils.device.autocast`)."""
    if not casts_weights(device, precision):
        return module
    return CastInference(module, device.type, pack)
