"""The backbone used for extraction, and the features it gives per window.

A checkpoint is any layout :func:`endofm.create_model` reads, or a fine-tuned task directory
written by ``endofm finetune`` (classifier, segmenter, detector): then its backbone is used.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import Tensor, nn

from endofm.models import Attention, VisionTransformer, create_model
from endofm.models.checkpoint import CONFIG_NAME
from endofm.models.vision_transformer import attention_layers

FEATURES = ("cls", "mean_patch", "patch_grid")
TASK_KINDS = {"segmenter": "segmentation", "detector": "detection"}


def task_kind(path: str | Path) -> str | None:
    """The task of a fine-tuned segmentation/detection directory, else ``None``."""
    config = Path(path) / CONFIG_NAME
    if not config.is_file():
        return None
    try:
        kind = json.loads(config.read_text()).get("kind")
    except (OSError, ValueError, AttributeError):
        return None
    return TASK_KINDS.get(kind)


def load_backbone(checkpoint: str | Path, num_heads: int | None = None) -> VisionTransformer:
    """The backbone of ``checkpoint`` in eval mode, on the CPU, without drop path (built
    without a random init: no draw from the random stream, a faster start)."""
    task = task_kind(checkpoint)
    if task is not None:
        from endofm.inference.task_models import load_task_model

        model = load_task_model(checkpoint).model
        if type(model).__name__ == "HybridSegmenter":
            warnings.warn(f"{checkpoint}: a hybrid segmenter's ViT was trained on ResNet "
                          "features; its patch embedding is untrained", stacklevel=2)
        return model.backbone.eval()
    overrides = {"drop_path_rate": 0.0} | ({"num_heads": num_heads} if num_heads else {})
    return create_model(pretrained=checkpoint, random_init=False, **overrides).eval()


class FeatureExtractor(nn.Module):
    """``[B, 3, T, H, W]`` clips → per-window features, from one backbone forward.

    ``cls``: the normalised CLS token ``[B, D]`` (what ``model(clip)`` returns);
    ``mean_patch``: the mean of the normalised patch tokens ``[B, D]``;
    ``patch_grid``: patch tokens averaged over the window's frames ``[B, D, h, w]``.
    """

    def __init__(self, backbone: VisionTransformer, features: str = "cls") -> None:
        super().__init__()
        if features not in FEATURES:
            raise ValueError(f"features must be one of {FEATURES}, got {features!r}")
        self.backbone, self.features = backbone, features

    def forward(self, clips: Tensor) -> Tensor:
        tokens = self.backbone.forward_features(clips)
        if self.features == "cls":
            return tokens[:, 0]
        patches = tokens[:, 1:]
        if self.features == "mean_patch":
            return patches.mean(dim=1)
        b, d = patches.shape[0], patches.shape[-1]
        p = self.backbone.patch_size
        h, w = clips.shape[-2] // p, clips.shape[-1] // p
        if self.backbone.attention_type == "space_only":  # frames already averaged
            return patches.reshape(b, h, w, d).permute(0, 3, 1, 2)
        t = patches.shape[1] // (h * w)
        return patches.reshape(b, h, w, t, d).mean(dim=3).permute(0, 3, 1, 2)


def feature_shape(backbone: VisionTransformer, features: str, height: int,
                  width: int) -> tuple[int, ...]:
    """Shape of one window's features for clips of ``height x width``."""
    if features == "patch_grid":
        p = backbone.patch_size
        return (backbone.embed_dim, height // p, width // p)
    return (backbone.embed_dim,)


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
