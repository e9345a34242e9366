"""Endo-FM clip backbone → ViTDet-style simple pyramid → a torchvision detection head.

A sample is a clip ``[3, T, H, W]`` (float in [0, 1]) whose frame ``T // 2`` is the target
frame; its neighbours give temporal context. For torchvision the clip is packed into one
``[T*3, H, W]`` "image", so ``GeneralizedRCNNTransform`` normalises, resizes (min/max size)
and pads every frame identically, and maps the boxes back to the original size.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum

import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection import FCOS, FasterRCNN, RetinaNet
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.ops import MultiScaleRoIAlign

from endofm.data.transforms import KINETICS_MEAN, KINETICS_STD
from endofm.models import BackboneConfig, create_backbone
from endofm.models.vision_transformer import require_per_frame_tokens
from endofm.utils.checks import require_at_least, require_in_range

STRIDES = (8, 16, 32, 64)


class DetectionHead(StrEnum):
    fcos = "fcos"
    retinanet = "retinanet"
    faster_rcnn = "faster_rcnn"


HEADS = tuple(DetectionHead)


@dataclass
class DetectionModelConfig:
    """Backbone (its size follows ``model.min_size``, its frame count ``data.num_frames``),
    pyramid and head settings. Freezing and the backbone's learning-rate multiplier are the
    engine's ``train.freeze_backbone`` / ``optim.backbone_lr_mult``."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    head: DetectionHead = DetectionHead.fcos  # torchvision detector: fcos, retinanet or faster_rcnn
    num_classes: int | None = None  # None: from the data (KUMC: 2; COCO: its categories)
    pyramid_channels: int = 256  # channels of each feature-pyramid level
    min_size: int = 600  # frames are resized so their short side is this (px)
    max_size: int = 640  # long side cap (px): a frame is shrunk further if min_size would exceed it
    score_thresh: float = 0.05  # detections scoring below this are dropped
    detections_per_img: int = 100  # most detections kept per frame

    def __post_init__(self) -> None:
        if self.num_classes is not None:
            require_at_least(self, "model", 1, "num_classes")
        require_at_least(self, "model", 1, "pyramid_channels", "min_size", "detections_per_img")
        if self.max_size < self.min_size:
            raise ValueError(f"model.max_size={self.max_size} is smaller than model.min_size="
                             f"{self.min_size}")
        require_in_range(self, "model", 0, 1, "score_thresh")


def _conv_gn(cin: int, cout: int, kernel: int) -> nn.Sequential:
    groups = 32 if cout % 32 == 0 else 1
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
                         nn.GroupNorm(groups, cout))


class SimplePyramid(nn.Module):
    """Stride-16 map ``[B, D, h, w]`` → levels ``"0".."3"`` at strides 8, 16, 32, 64, each
    ``[B, C, ~h*16/s, ~w*16/s]`` (deconv ×2, identity, max-pool ×½, then a stride-2 max pool)."""

    def __init__(self, in_dim: int, channels: int) -> None:
        super().__init__()
        self.scales = nn.ModuleList([
            nn.Sequential(nn.ConvTranspose2d(in_dim, in_dim // 2, 2, stride=2), nn.GELU()),
            nn.Identity(),
            nn.MaxPool2d(2, ceil_mode=True),
        ])
        widths = (in_dim // 2, in_dim, in_dim)
        self.necks = nn.ModuleList([
            nn.Sequential(_conv_gn(w, channels, 1), _conv_gn(channels, channels, 3))
            for w in widths])
        self.out_channels = channels

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        levels = [neck(scale(x)) for scale, neck in zip(self.scales, self.necks, strict=True)]
        levels.append(F.max_pool2d(levels[-1], 1, stride=2))
        return OrderedDict((str(i), level) for i, level in enumerate(levels))


class ClipBackbone(nn.Module):
    """Packed clips ``[B, T*3, H, W]`` → the pyramid of the target frame's tokens.

    The ViT is registered on :class:`ClipDetector` as ``backbone`` (the engine's convention for
    freezing and the lower learning rate); here it is a plain reference, so its weights appear
    once in the state dict.
    """

    def __init__(self, vit: nn.Module, num_frames: int, channels: int) -> None:
        super().__init__()
        require_per_frame_tokens(vit, "the detector")
        self.__dict__["vit"] = vit
        self.num_frames = num_frames
        self.target = num_frames // 2
        self.pyramid = SimplePyramid(vit.embed_dim, channels)
        self.out_channels = channels

    def forward(self, packed: Tensor) -> OrderedDict[str, Tensor]:
        b, _, h, w = packed.shape
        clip = packed.reshape(b, self.num_frames, 3, h, w).transpose(1, 2)
        tokens = self.vit.get_intermediate_layers(clip, n=1, reshape=True)[0]
        return self.pyramid(tokens[:, :, self.target])


def _head(cfg: DetectionModelConfig, backbone: ClipBackbone, mean: list[float],
          std: list[float]) -> nn.Module:
    common = {"min_size": cfg.min_size, "max_size": cfg.max_size, "image_mean": mean,
              "image_std": std, "size_divisible": STRIDES[-1]}
    num_classes = cfg.num_classes or 2  # unset: KUMC's two (the task sets it from the data)
    ratios = ((0.5, 1.0, 2.0),) * len(STRIDES)
    if cfg.head == "fcos":
        anchors = AnchorGenerator(tuple((s,) for s in STRIDES), ((1.0,),) * len(STRIDES))
        fcos = FCOS(backbone, num_classes, anchor_generator=anchors,
                    score_thresh=cfg.score_thresh, detections_per_img=cfg.detections_per_img,
                    **common)
        # the distances pass a ReLU: start them positive (one anchor size) so that no side's
        # output starts, and stays, at zero gradient
        nn.init.constant_(fcos.head.regression_head.bbox_reg.bias, 1.0)
        return fcos
    if cfg.head == "retinanet":
        sizes = tuple((4 * s, round(4 * s * 2 ** (1 / 3)), round(4 * s * 2 ** (2 / 3)))
                      for s in STRIDES)
        return RetinaNet(backbone, num_classes, anchor_generator=AnchorGenerator(
            sizes, ratios), score_thresh=cfg.score_thresh,
            detections_per_img=cfg.detections_per_img, **common)
    if cfg.head == "faster_rcnn":
        names = [str(i) for i in range(len(STRIDES))]
        return FasterRCNN(backbone, num_classes + 1,
                          rpn_anchor_generator=AnchorGenerator(
                              tuple((4 * s,) for s in STRIDES), ratios),
                          box_roi_pool=MultiScaleRoIAlign(names, 7, 2),
                          box_score_thresh=cfg.score_thresh,
                          box_detections_per_img=cfg.detections_per_img, **common)
    raise ValueError(f"unknown detection head {cfg.head!r}; use one of {HEADS}")


class ClipDetector(nn.Module):
    """A torchvision detector over clips.

    ``forward(clips, targets=None)``: ``clips`` a list of float ``[3, T, H, W]`` in [0, 1]
    (sizes may differ between samples); ``targets`` a list of ``{"boxes": float [n, 4] xyxy
    pixels of the target frame, "labels": int64 [n] in 1..num_classes}``. Training returns the
    head's loss dict; evaluation a list of ``{"boxes", "scores", "labels"}`` in input pixels,
    labels in 1..num_classes. The sigmoid heads (FCOS, RetinaNet) have no background logit, so
    their labels are shifted to 0..num_classes-1 inside; Faster R-CNN keeps 0 as background.
    """

    def __init__(self, cfg: DetectionModelConfig, vit: nn.Module, num_frames: int) -> None:
        super().__init__()
        self.num_frames = num_frames
        self.label_shift = 0 if cfg.head == "faster_rcnn" else 1
        self.backbone = vit
        pyramid = ClipBackbone(vit, num_frames, cfg.pyramid_channels)
        mean, std = list(KINETICS_MEAN) * num_frames, list(KINETICS_STD) * num_frames
        self.detector = _head(cfg, pyramid, mean, std)

    def forward(self, clips: list[Tensor], targets: list[dict[str, Tensor]] | None = None):
        packed = []
        for clip in clips:
            if clip.ndim != 4 or clip.shape[0] != 3 or clip.shape[1] != self.num_frames:
                raise ValueError(f"expected a clip [3, {self.num_frames}, H, W], "
                                 f"got {tuple(clip.shape)}")
            packed.append(clip.transpose(0, 1).reshape(3 * self.num_frames, *clip.shape[2:]))
        if targets is not None:
            targets = [{"boxes": t["boxes"], "labels": t["labels"] - self.label_shift}
                       for t in targets]
        out = self.detector(packed, targets)
        if isinstance(out, list):
            out = [o | {"labels": o["labels"] + self.label_shift} for o in out]
        return out


def build_detector(cfg: DetectionModelConfig, num_frames: int) -> ClipDetector:
    """Backbone + pyramid + ``cfg.head`` for clips of ``num_frames`` frames."""
    if cfg.head not in HEADS:
        raise ValueError(f"unknown detection head {cfg.head!r}; use one of {HEADS}")
    return ClipDetector(cfg, create_backbone(cfg.backbone), num_frames)
