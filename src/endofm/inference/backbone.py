"""The backbone used for extraction, and the features it gives per window.

A checkpoint is any layout :func:`endofm.create_model` reads, or a fine-tuned task model
written by ``endofm finetune`` (any registered task's): then its backbone is used.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from torch import Tensor, nn

from endofm.models import VisionTransformer, create_model
from endofm.models.hub import resolve_weights

FEATURES = ("cls", "mean_patch", "patch_grid")


def load_backbone(checkpoint: str | Path, num_heads: int | None = None) -> VisionTransformer:
    """The backbone of ``checkpoint`` in eval mode, on the CPU, without drop path (built
    without a random init: no draw from the random stream, a faster start). ``checkpoint`` may
    be an ``hf-hub:`` name. A task model's caveat about its backbone
    (:func:`endofm.tasks.base.backbone_caveat`) is a warning."""
    from endofm.inference.task_models import saved_task

    checkpoint = resolve_weights(checkpoint)
    if saved_task(checkpoint) is not None:
        from endofm.inference.task_models import load_task_model
        from endofm.tasks.base import InputKind, backbone_caveat

        task_model = load_task_model(checkpoint, num_heads=num_heads)
        if task_model.input_kind == InputKind.features:
            raise ValueError(f"{checkpoint}: a {task_model.task} model takes window features, "
                             "not video windows, and has no backbone of its own; give the "
                             "backbone its features come from (the backbone/ folder inside it)")
        model = task_model.model
        caveat = backbone_caveat(model)
        if caveat:
            warnings.warn(f"{checkpoint}: {caveat}", stacklevel=2)
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
