"""The linear layers of a bf16 inference copy as oneDNN calls on prepacked weights (CPU).

``nn.Linear`` in bf16 on a CPU runs ``addmm``: the bias is first copied into the output (one
pass over it), then the GEMM reads the weight in its plain layout, and an MLP's GELU is one
more pass. oneDNN's linear (``torch.ops.mkldnn._linear_pointwise``, which inductor's frozen
graphs call) takes the weight reordered once into its blocked layout, adds the bias inside
the GEMM and can apply the exact GELU to the output before it leaves the cache:
:class:`PackedLinear`. :func:`pack_linears` swaps them into the bf16 copy that
:class:`endofm.runner.precision.CastInference` runs, fusing each MLP's ``fc1`` with its GELU.
ViT-B/16 at 8x224 on 2 cores with AMX, in the same runs: 312-315 ms with ``nn.Linear``,
279-297 ms packed (``benchmarks/backbone.py --precisions bf16``: ``eager-cast-linear`` and
``eager-cast``; docs/deploy.md). Where this PyTorch's oneDNN cannot run bf16 linears on
the CPU (:func:`packing_available`), the layers stay as they are.
"""

from __future__ import annotations

import functools
import logging

import torch
import torch.nn.functional as F
from timm.layers import Mlp
from torch import Tensor, nn

logger = logging.getLogger(__name__)


class PackedLinear(nn.Module):
    """``layer`` (an ``nn.Linear`` in bf16) for CPU inference: oneDNN on the weight reordered
    once, the bias added in the GEMM, and with ``gelu`` the exact GELU applied to its output.
    ``[..., in_features] -> [..., out_features]`` in bf16 (inputs of other dtypes are cast)."""

    def __init__(self, layer: nn.Linear, gelu: bool = False) -> None:
        super().__init__()
        self.in_features, self.out_features = layer.in_features, layer.out_features
        self.weight = torch.ops.mkldnn._reorder_linear_weight(layer.weight.detach(), None)
        self.bias = None if layer.bias is None else layer.bias.detach()
        self.gelu = gelu

    def forward(self, x: Tensor) -> Tensor:
        x = x.to(torch.bfloat16)
        if self.gelu:
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "gelu", [],
                                                      "none")
        return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")

    def __deepcopy__(self, memo: dict) -> PackedLinear:
        """A copy packed anew (oneDNN's blocked weight has no storage to copy)."""
        layer = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                          dtype=torch.bfloat16)
        with torch.no_grad():
            layer.weight.copy_(self.weight.to_dense())
            if self.bias is not None:
                layer.bias.copy_(self.bias)
        return PackedLinear(layer, self.gelu)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, gelu={self.gelu}")


@functools.cache
def packing_available() -> bool:
    """Whether oneDNN runs :class:`PackedLinear` on this CPU: bf16 support, and a small layer
    (bias, GELU) agreeing with ``F.linear`` in bf16. Checked once per process."""
    generator = torch.Generator().manual_seed(0)
    layer = nn.Linear(64, 32).to(torch.bfloat16)
    x = torch.randn(2, 5, 64, generator=generator).to(torch.bfloat16)
    try:  # without these oneDNN ops: AttributeError; without bf16 on this CPU: RuntimeError
        if not (torch.backends.mkldnn.is_available()
                and torch.ops.mkldnn._is_mkldnn_bf16_supported()):
            return False
        with torch.no_grad():
            plain = F.linear(x, layer.weight, layer.bias).float()
            got = PackedLinear(layer)(x).float(), PackedLinear(layer, gelu=True)(x).float()
    except (AttributeError, RuntimeError, TypeError) as exc:
        logger.debug("oneDNN bf16 linear unavailable: %s", exc)
        return False
    scale = 2.0**-6 * float(plain.abs().max())
    return bool((got[0] - plain).abs().max() <= scale
                and (got[1] - F.gelu(plain)).abs().max() <= scale)


def fuses_gelu(module: nn.Module) -> bool:
    """A timm ``Mlp`` whose activation is the exact GELU (fc1 → GELU → fc2)."""
    act = getattr(module, "act", None)
    return (isinstance(module, Mlp) and isinstance(act, nn.GELU) and act.approximate == "none"
            and isinstance(module.fc1, nn.Linear))


def pack_linears(module: nn.Module) -> int:
    """Replace every ``nn.Linear`` of ``module`` (bf16, for inference) by a
    :class:`PackedLinear`; an MLP's ``fc1`` takes over its exact GELU (:func:`fuses_gelu`),
    which becomes ``nn.Identity``. Returns how many layers were replaced."""
    count = 0
    for parent in list(module.modules()):
        fuse = fuses_gelu(parent)
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                setattr(parent, name, PackedLinear(child, gelu=fuse and name == "fc1"))
                count += 1
        if fuse:
            parent.act = nn.Identity()
    return count
