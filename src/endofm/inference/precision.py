"""Eager bf16 inference on a CPU: the weights cast once instead of at every call.

Autocast keeps fp32 weights and casts each ``nn.Linear``'s weight to bf16 again in every
forward (``aten::copy_``: about a fifth of a ViT-B/16 8x224 forward on 2 cores). For
inference the weights never change, so :class:`CastInference` holds a bf16 copy of the model
and runs it on bf16 inputs with autocast off: every op, LayerNorm and softmax included, takes
bf16 tensors (PyTorch's CPU kernels accumulate them in fp32) and the outputs come back as
fp32. ``tests/inference/test_precision.py`` checks LayerNorm, softmax and the whole forward
against fp32.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


def casts_weights(device: torch.device, precision: str) -> bool:
    """Whether an eager forward on ``device`` in ``precision`` uses a cast copy: bf16 on the
    CPU (on CUDA autocast's weight cache and fused kernels make it unnecessary)."""
    return device.type == "cpu" and precision == "bf16"


def _cast(value: Any, dtype: torch.dtype) -> Any:
    """Floating-point tensors of ``value`` (a tensor, or a list/tuple/dict of them) in
    ``dtype``; anything else unchanged."""
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, (list, tuple)):
        return type(value)(_cast(v, dtype) for v in value)
    if isinstance(value, dict):
        return {k: _cast(v, dtype) for k, v in value.items()}
    return value


class CastInference(nn.Module):
    """A ``dtype`` copy of ``module`` (the original is left as it is) for inference: inputs
    are cast to ``dtype``, the forward runs with autocast off, floating-point outputs return
    as fp32. Same signature and outputs as ``module``."""

    def __init__(self, module: nn.Module, dtype: torch.dtype = torch.bfloat16) -> None:
        super().__init__()
        self.module = copy.deepcopy(module).to(dtype).eval()
        self.dtype = dtype

    def forward(self, *args: Any) -> Any:
        with torch.autocast("cpu", enabled=False):
            out = self.module(*_cast(args, self.dtype))
        return _cast(out, torch.float32)


def inference_module(module: nn.Module, device: torch.device, precision: str) -> nn.Module:
    """``module`` as an eager inference forward in ``precision`` should run it: a
    :class:`CastInference` copy where :func:`casts_weights`, else ``module`` itself (run
    under :func:`endofm.utils.device.autocast`)."""
    return CastInference(module) if casts_weights(device, precision) else module
