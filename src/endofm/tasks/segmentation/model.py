"""Video polyp segmentation models on the Endo-FM backbone.

- ``HybridSegmenter`` (the release's TransUNet-style model): a ResNet-v2 stem (GroupNorm,
  weight-standardised convs, 3 stages to stride 16) → 1x1 projection to the backbone width →
  learned position table → the Endo-FM blocks over the T frames of a window (CLS prepended) →
  final norm → cascaded upsampling decoder with skip connections → 3x3 head.
- ``ViTSegmenter``: no CNN stem; the Endo-FM patch embedding and a progressive upsampling
  decoder fed by several blocks' tokens (``get_intermediate_layers(reshape=True)``).

Both map clips ``[B, 3, T, H, W]`` (H, W multiples of 16) to logits ``[B, C, T, H, W]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial

import torch
import torch.nn.functional as F
from timm.layers import ConvNormAct, GroupNormAct, StdConv2d, trunc_normal_
from timm.models.resnetv2 import Bottleneck, ResNetStage
from torch import nn
from torch.utils.checkpoint import checkpoint

from endofm.models.config import BackboneConfig
from endofm.models.vision_transformer import require_per_frame_tokens, resize_time_embed

STEM_STRIDE = 16


def _frames(x: torch.Tensor) -> torch.Tensor:
    """``[B, C, T, H, W]`` → ``[B*T, C, H, W]``."""
    b, c, t, h, w = x.shape
    return x.transpose(1, 2).reshape(b * t, c, h, w)


def _clips(x: torch.Tensor, batch: int) -> torch.Tensor:
    """``[B*T, C, H, W]`` → ``[B, C, T, H, W]``."""
    bt, c, h, w = x.shape
    return x.reshape(batch, bt // batch, c, h, w).transpose(1, 2)


class ResNetV2Stem(nn.Module):
    """Root conv (7x7, stride 2) + max-pool + 3 bottleneck stages (strides 1, 2, 2).

    ``forward(x [N, 3, H, W])`` returns the stride-16 map ``[N, channels[-1], H/16, W/16]`` and
    the skips ``[stride 8, stride 4, stride 2]`` with ``channels[1], channels[0], width``
    channels.
    """

    def __init__(self, width: int = 64, layers: Sequence[int] = (3, 4, 9),
                 channels: Sequence[int] = (256, 512, 1024), gn_groups: int = 32) -> None:
        super().__init__()
        if len(layers) != 3 or len(channels) != 3:
            raise ValueError(f"the stem has 3 stages; got layers={layers}, channels={channels}")
        norm = partial(GroupNormAct, num_groups=gn_groups)
        self.root = nn.Sequential(StdConv2d(3, width, 7, stride=2, padding=3, bias=False),
                                  norm(width))
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        ins = (width, *channels[:2])
        self.stages = nn.ModuleList(
            ResNetStage(i, o, stride=s, dilation=1, depth=d, block_fn=Bottleneck,
                        act_layer=nn.ReLU, conv_layer=StdConv2d, norm_layer=norm)
            for i, o, s, d in zip(ins, channels, (1, 2, 2), layers, strict=True))
        self.skip_channels = (channels[1], channels[0], width)
        self.out_channels = channels[2]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        root = self.root(x)
        s4 = self.stages[0](self.pool(root))
        s8 = self.stages[1](s4)
        return self.stages[2](s8), [s8, s4, root]


class DecoderBlock(nn.Module):
    """Upsample x2 (bilinear), concatenate the skip, two 3x3 conv-BN-ReLU."""

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv1 = ConvNormAct(in_ch + skip_ch, out_ch, 3)
        self.conv2 = ConvNormAct(out_ch, out_ch, 3)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


class CascadedDecoder(nn.Module):
    """TransUNet's cascaded upsampler: 3x3 conv to ``hidden``, then one ``DecoderBlock`` per
    entry of ``channels`` (x2 each), the first ``len(skip_channels)`` with a skip."""

    def __init__(self, in_ch: int, skip_channels: Sequence[int], hidden: int = 512,
                 channels: Sequence[int] = (256, 128, 64, 16)) -> None:
        super().__init__()
        self.conv_more = ConvNormAct(in_ch, hidden, 3)
        skips = list(skip_channels) + [0] * (len(channels) - len(skip_channels))
        ins = (hidden, *channels[:-1])
        self.blocks = nn.ModuleList(DecoderBlock(i, s, o)
                                    for i, s, o in zip(ins, skips, channels, strict=True))

    def forward(self, x: torch.Tensor, skips: Sequence[torch.Tensor]) -> torch.Tensor:
        x = self.conv_more(x)
        for i, block in enumerate(self.blocks):
            x = block(x, skips[i] if i < len(skips) else None)
        return x


class HybridSegmenter(nn.Module):
    """TransUNet-style segmenter on an Endo-FM ``VisionTransformer`` (kept as ``backbone``).

    The backbone's ``cls_token`` (with its CLS position entry), ``time_embed``, ``blocks`` and
    ``norm`` are used; its patch embedding and spatial table are replaced by the CNN stem and a
    new learned position table, so those backbone parameters get no gradient.
    """

    def __init__(self, backbone: nn.Module, num_classes: int = 2, img_size: int = 224,
                 stem_width: int = 64, stem_layers: Sequence[int] = (3, 4, 9),
                 stem_channels: Sequence[int] = (256, 512, 1024), gn_groups: int = 32,
                 decoder_hidden: int = 512,
                 decoder_channels: Sequence[int] = (256, 128, 64, 16),
                 time_embed: bool = True) -> None:
        super().__init__()
        self.use_time_embed = time_embed
        require_per_frame_tokens(backbone, "the hybrid segmenter")
        dim = backbone.embed_dim
        self.backbone = backbone
        self.stem = ResNetV2Stem(stem_width, stem_layers, stem_channels, gn_groups)
        self.proj = nn.Conv2d(self.stem.out_channels, dim, 1)
        grid = img_size // STEM_STRIDE
        self.pos_embed = nn.Parameter(torch.zeros(1, dim, grid, grid))
        trunc_normal_(self.pos_embed, std=0.02)
        self.decoder = CascadedDecoder(dim, self.stem.skip_channels, decoder_hidden,
                                       decoder_channels)
        self.head = nn.Conv2d(decoder_channels[-1], num_classes, 3, padding=1)

    def backbone_caveat(self) -> str:
        """The backbone alone is not what this model was trained as (see the class)."""
        return ("a hybrid segmenter's ViT was trained on ResNet features; its patch embedding "
                "is untrained")

    def _tokens(self, feat: torch.Tensor, batch: int) -> torch.Tensor:
        """Stride-16 features ``[B*T, D, h, w]`` → tokens ``[B, 1 + h*w*T, D]`` ((h, w, t)
        order, t fastest) with the position table, the temporal table (unless disabled, as
        in the release) and CLS added."""
        _, d, h, w = feat.shape
        x = _clips(feat, batch)
        t = x.shape[2]
        pos = F.interpolate(self.pos_embed, size=(h, w), mode="nearest")
        x = x + pos.unsqueeze(2)
        if self.use_time_embed:
            time = resize_time_embed(self.backbone.time_embed, t).transpose(1, 2)
            x = x + time.view(1, d, t, 1, 1)
        x = x.permute(0, 3, 4, 2, 1).reshape(batch, h * w * t, d)
        cls = self.backbone.cls_token + self.backbone.pos_embed[:, :1]
        return torch.cat([cls.expand(batch, -1, -1), x], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Clips ``[B, 3, T, H, W]`` → logits ``[B, num_classes, T, H, W]``."""
        b, _, t, height, width = x.shape
        if height % STEM_STRIDE or width % STEM_STRIDE:
            raise ValueError(f"input size {height}x{width} is not a multiple of {STEM_STRIDE}")
        feat, skips = self.stem(_frames(x))
        feat = self.proj(feat)
        h, w = feat.shape[-2:]
        tokens = self._tokens(feat, b)
        use_ckpt = bool(getattr(self.backbone, "grad_checkpointing", False))
        for blk in self.backbone.blocks:
            if use_ckpt and torch.is_grad_enabled():
                tokens = checkpoint(blk, tokens, t, use_reentrant=False)
            else:
                tokens = blk(tokens, t)
        tokens = self.backbone.norm(tokens)[:, 1:]
        feat = tokens.reshape(b, h, w, t, -1).permute(0, 3, 4, 1, 2).reshape(b * t, -1, h, w)
        return _clips(self.head(self.decoder(feat, skips)), b)


class ViTSegmenter(nn.Module):
    """Endo-FM patch tokens of several blocks → concatenated → 1x1 conv → progressive x2
    upsampling (3x3 conv-BN-ReLU per stage) → 3x3 head, resized to the input if needed."""

    def __init__(self, backbone: nn.Module, num_classes: int = 2,
                 layers: Sequence[int] = (3, 5, 7, 11),
                 decoder_channels: Sequence[int] = (256, 128, 64, 16)) -> None:
        super().__init__()
        require_per_frame_tokens(backbone, "the ViT segmenter")
        depth = len(backbone.blocks)
        if not layers or any(not 0 <= i < depth for i in layers):
            raise ValueError(f"layers {list(layers)} must index the backbone's {depth} blocks")
        self.backbone = backbone
        self.layers = list(layers)
        self.fuse = ConvNormAct(backbone.embed_dim * len(self.layers), decoder_channels[0], 1)
        ins = (decoder_channels[0], *decoder_channels[:-1])
        self.ups = nn.ModuleList(ConvNormAct(i, o, 3)
                                 for i, o in zip(ins, decoder_channels, strict=True))
        self.head = nn.Conv2d(decoder_channels[-1], num_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Clips ``[B, 3, T, H, W]`` → logits ``[B, num_classes, T, H, W]``."""
        b, _, _, height, width = x.shape
        feats = self.backbone.get_intermediate_layers(x, n=self.layers, reshape=True)
        y = self.fuse(_frames(torch.cat(list(feats), dim=1)))
        for up in self.ups:
            y = up(F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False))
        y = self.head(y)
        if y.shape[-2:] != (height, width):
            y = F.interpolate(y, size=(height, width), mode="bilinear", align_corners=False)
        return _clips(y, b)


class SegmenterVariant(StrEnum):
    hybrid = "hybrid"
    vit = "vit"


@dataclass
class SegmentationModelConfig:
    """Model settings. ``variant``: ``"hybrid"`` (TransUNet-style, the release) or ``"vit"``.

    ``backbone``: the Endo-FM backbone (its size and frame count follow ``data.img_size`` /
    ``data.num_frames``).
    """

    # hybrid: TransUNet-style CNN stem (the release); vit: plain ViT tokens
    variant: SegmenterVariant = SegmenterVariant.hybrid
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    num_classes: int | None = None  # None: sized from the data (CVC: 2)
    stem_width: int = 64  # hybrid: channels of the CNN stem's root conv
    # hybrid: bottleneck blocks in each of the stem's 3 stages
    stem_layers: list[int] = field(default_factory=lambda: [3, 4, 9])
    # hybrid: output channels of the stem's 3 stages
    stem_channels: list[int] = field(default_factory=lambda: [256, 512, 1024])
    gn_groups: int = 32  # hybrid: GroupNorm groups in the stem
    decoder_hidden: int = 512  # hybrid: channels of the decoder's first 3x3 conv
    # channels of each x2-upsampling decoder stage
    decoder_channels: list[int] = field(default_factory=lambda: [256, 128, 64, 16])
    # vit: backbone blocks (0-based) whose patch tokens are fused
    vit_layers: list[int] = field(default_factory=lambda: [3, 5, 7, 11])
    time_embed: bool = True  # false: no temporal table added (the release's hybrid segmenter)


def build_segmenter(cfg: SegmentationModelConfig, backbone: nn.Module, img_size: int,
                    num_classes: int | None = None) -> nn.Module:
    """Wrap ``backbone`` into the ``cfg.variant`` segmenter with ``num_classes`` outputs
    (default: ``cfg.num_classes``, else 2).

    Args:
        cfg: the ``model`` section.
        backbone: the Endo-FM backbone.
        img_size: the input side in pixels.
        num_classes: the number of classes the data has (background included).
    """
    num_classes = num_classes or cfg.num_classes or 2
    if cfg.variant == "hybrid":
        return HybridSegmenter(backbone, num_classes, img_size, cfg.stem_width,
                               cfg.stem_layers, cfg.stem_channels, cfg.gn_groups,
                               cfg.decoder_hidden, cfg.decoder_channels, cfg.time_embed)
    if cfg.variant == "vit":
        if not cfg.time_embed:
            raise ValueError("model.time_embed=false needs model.variant=hybrid")
        return ViTSegmenter(backbone, num_classes, cfg.vit_layers, cfg.decoder_channels)
    raise ValueError(f"unknown segmentation model variant {cfg.variant!r}; use 'hybrid' or 'vit'")
