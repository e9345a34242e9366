"""The classification task's model: backbone CLS → linear head, and loading of fine-tuned
classifiers (``endofm.load_classifier``)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from endofm.models.checkpoint import (
    ENDOFM_LAYOUTS,
    CheckpointError,
    adapt_state_dict,
    load_checkpoint,
    save_state_dir,
)
from endofm.models.registry import backbone_config, resolve_num_heads
from endofm.models.vision_transformer import VisionTransformer
from endofm.tasks.classification import SPEC


class VideoClassifier(nn.Module):
    """``[B, 3, T, H, W] -> [B, num_classes]`` logits from the backbone's CLS embedding.

    Parameter names follow the release's PolypDiag fine-tune: the head is ``linear``.
    """

    def __init__(self, backbone: VisionTransformer, num_classes: int = 2,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.backbone = backbone
        self.num_classes = num_classes
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(backbone.embed_dim, num_classes)
        nn.init.trunc_normal_(self.linear.weight, std=0.02)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.dropout(self.backbone(x)))

    def save_pretrained(self, out_dir: str | Path, extra: dict | None = None) -> Path:
        """Write ``model.safetensors`` (``backbone.*`` and ``head.*``) + ``config.json``."""
        tensors = {f"backbone.{k}": v for k, v in self.backbone.state_dict().items()}
        tensors |= {f"head.{k}": v for k, v in self.linear.state_dict().items()}
        meta = {"kind": SPEC.kind, "task": SPEC.name, "format": "endofm",
                "num_classes": self.num_classes,
                "backbone": backbone_config(self.backbone), **(extra or {})}
        return save_state_dir(tensors, meta, out_dir)


def load_classifier(path: str | Path, num_heads: int | None = None) -> VideoClassifier:
    """Load a fine-tuned classifier: the released PolypDiag layout (``state_dict`` with
    ``module.linear.*`` + ``backbone_state_dict``) or an endofm classifier directory.

    Released files do not record the head count: it is the named config's for the file's width
    (12 for ViT-B) and must be given as ``num_heads`` for other widths. Returns the model in
    eval mode. A file without a classification head is an
    error, never a silently untrained head.
    """
    ckpt = load_checkpoint(path)
    head = {k.removeprefix("linear."): v for k, v in ckpt.head_state_dict.items()}
    ours = ckpt.layout in ENDOFM_LAYOUTS and ckpt.extra["meta"].get("kind") == SPEC.kind
    if not (ours or ckpt.layout in SPEC.released_layouts) or set(head) != {"weight", "bias"}:
        raise CheckpointError(
            f"{path}: not a classifier checkpoint (layout '{ckpt.layout}', head keys "
            f"{sorted(ckpt.head_state_dict)}); expected a PolypDiag fine-tune with "
            "'module.linear.weight'/'module.linear.bias' or an endofm classifier directory")
    config = {**ckpt.config, "drop_path_rate": 0.0,
              "num_heads": resolve_num_heads(ckpt.config, num_heads, path)}
    backbone = VisionTransformer(**config)
    backbone.load_state_dict(adapt_state_dict(ckpt.state_dict, backbone, path))
    model = VideoClassifier(backbone, num_classes=head["weight"].shape[0])
    if head["weight"].shape[1] != backbone.embed_dim:
        raise CheckpointError(f"{path}: head weight {tuple(head['weight'].shape)} does not fit "
                              f"backbone width {backbone.embed_dim}")
    with torch.no_grad():
        model.linear.load_state_dict(head)
    return model.eval()
