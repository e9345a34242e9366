"""The ``segmentation`` task: CVC-12k windows, CE + Dice loss, whole-sequence evaluation."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import torch
from torch import nn

from endofm.config import to_dict
from endofm.data import CvcSequence, read_cvc
from endofm.models import backbone_config, create_backbone, create_model
from endofm.models.checkpoint import read_state_dir, read_state_meta, save_state_dir
from endofm.tasks.base import EngineConfig, Task, saved_model_settings
from endofm.tasks.segmentation.data import SegmentationWindows
from endofm.tasks.segmentation.evaluation import evaluate_sequences
from endofm.tasks.segmentation.loss import CEDiceLoss
from endofm.tasks.segmentation.model import (
    SegmentationModelConfig,
    build_segmenter,
)
from endofm.utils.checks import require_at_least

KIND = "segmenter"
WINDOWS = ("frames", "whole_sequence")


class CvcProtocol(StrEnum):
    files = "files"
    release = "release"
    leakfree = "leakfree"


@dataclass
class SegmentationDataConfig:
    """Which sequences, at what size, in windows of how many frames.

    ``protocol`` (``endofm.data.read_cvc``): ``"files"`` reads ``train.txt``/``test.txt``
    (``first_frame length`` lines) from ``split_dir`` (default: the data root); ``"release"``
    is the release's leaky split (it warns); ``"leakfree"`` drops the test sequences from it.
    """

    protocol: CvcProtocol = CvcProtocol.files
    split_dir: str | None = None
    img_size: int = 224
    num_frames: int = 8
    train_stride: int = 4
    eval_stride: int = 4
    crop_margin: int = 32
    rotation: float = 5.0
    # frames: windows of num_frames frames (train_stride / eval_stride apart), predictions
    # stitched; whole_sequence: each sequence is one input, T = its length (6-25 frames in
    # CVC-12k), train.batch_size 1 (the release)
    window: str = "frames"
    # imagenet: RGB with ImageNet mean/std; release: BGR channel order (OpenCV fed as RGB),
    # each frame min-max stretched before and after augmentation, then (x - 0.5) / 0.5
    normalise: str = "imagenet"
    # false: one crop/flip/rotation for all frames of a window; true: drawn per frame (release)
    augment_per_frame: bool = False

    def __post_init__(self) -> None:
        require_at_least(self, "data", 1, "img_size", "num_frames", "train_stride", "eval_stride")
        require_at_least(self, "data", 0, "crop_margin", "rotation")


@dataclass
class SegmentationLossConfig:
    ce_weight: float = 0.5
    dice_weight: float = 0.5
    dice_denominator: str = "sum"  # sum: Σp + Σg; squares: Σp² + Σg² (the release)

    def __post_init__(self) -> None:
        require_at_least(self, "loss", 0, "ce_weight", "dice_weight")


@dataclass
class SegmentationConfig(EngineConfig):
    """The segmentation task's config: its sections plus the engine's."""

    model: SegmentationModelConfig = field(default_factory=SegmentationModelConfig)
    data: SegmentationDataConfig = field(default_factory=SegmentationDataConfig)
    loss: SegmentationLossConfig = field(default_factory=SegmentationLossConfig)

    def __post_init__(self) -> None:
        self.model.backbone.bind(self.data.img_size, self.data.num_frames,
                                 "data.img_size/data.num_frames")


def read_sequences(root: str | Path, split: str, data: SegmentationDataConfig
                   ) -> list[CvcSequence]:
    """CVC sequences of ``split`` (``"train"``/``"test"``) under ``root`` (none is an error)."""
    sequences = read_cvc(root, split, protocol=data.protocol, split_dir=data.split_dir)
    if not sequences:
        raise ValueError(f"{root}: the {data.protocol!r} {split!r} split has no sequences")
    return sequences


class SegmentationTask(Task):
    """CVC-12k video polyp segmentation; the kept model is selected on sequence Dice."""

    name = "segmentation"
    config_class = SegmentationConfig
    selection_metric = "dice"

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        if cfg.data.window not in WINDOWS:
            raise ValueError(f"data.window must be one of {WINDOWS}, got {cfg.data.window!r}")
        if cfg.data.window == "whole_sequence" and cfg.train.batch_size != 1:
            raise ValueError("data.window=whole_sequence feeds sequences of different lengths: "
                             f"set train.batch_size=1 (got {cfg.train.batch_size})")
        self.criterion = CEDiceLoss(cfg.loss.ce_weight, cfg.loss.dice_weight,
                                    cfg.loss.dice_denominator)

    def build_model(self, pretrained: str | Path | None = None) -> nn.Module:
        """The ``model.variant`` segmenter; its backbone from ``pretrained`` (the engine passes
        ``--pretrained`` or ``model.backbone.pretrained``)."""
        backbone = create_backbone(self.backbone_settings(pretrained))
        return build_segmenter(self.cfg.model, backbone, self.cfg.data.img_size)

    def read_items(self, root: str | Path, split: str) -> list[CvcSequence]:
        return read_sequences(root, split, self.cfg.data)

    def train_dataset(self, items: Sequence) -> SegmentationWindows:
        data = self.cfg.data
        return SegmentationWindows(items, data.num_frames, data.train_stride, data.img_size,
                                   augment=True, margin=data.crop_margin, rotation=data.rotation,
                                   whole_sequence=data.window == "whole_sequence",
                                   per_frame=data.augment_per_frame, normalise=data.normalise)

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """``batch``: clips ``[B, 3, T, S, S]`` and masks ``[B, T, S, S]`` on the model's device."""
        clips, masks = batch
        return self.criterion(model(clips), masks)

    def evaluate(self, model: nn.Module, items: Sequence, device: torch.device,
                 precision: str = "fp32", out_dir: Path | None = None) -> dict[str, Any]:
        data = self.cfg.data
        window = None if data.window == "whole_sequence" else data.num_frames
        return evaluate_sequences(model, items, data.img_size, window, data.eval_stride, device,
                                  precision, out_dir, data.normalise)

    def save_model(self, model: nn.Module, out_dir: Path) -> Path:
        """``model.safetensors`` + ``config.json`` (model settings, backbone architecture,
        input size and window length)."""
        model = getattr(model, "module", model)
        meta = {"kind": KIND, "format": "endofm", "model": to_dict(self.cfg.model),
                "backbone": backbone_config(model.backbone),
                "img_size": self.cfg.data.img_size, "num_frames": self.cfg.data.num_frames,
                "normalise": self.cfg.data.normalise}
        return save_state_dir(model.state_dict(), meta, out_dir)

    def saved_config(self, path: str | Path) -> SegmentationConfig:
        """This config with the saved model's input size, window length and input
        normalisation, so evaluation and prediction match training."""
        meta = read_state_meta(path, KIND)
        data = dataclasses.replace(self.cfg.data, img_size=meta["img_size"],
                                   num_frames=meta["num_frames"],
                                   normalise=meta.get("normalise", "imagenet"))
        return dataclasses.replace(
            self.cfg, data=data, model=saved_model_settings(SegmentationModelConfig, meta["model"]))

    def load_model(self, path: str | Path) -> nn.Module:
        """Load a directory written by :meth:`save_model` (in eval mode)."""
        meta, tensors = read_state_dir(path, KIND)
        model_cfg = saved_model_settings(SegmentationModelConfig, meta["model"])
        backbone = create_model(model_cfg.backbone.name, drop_path_rate=0.0, **meta["backbone"])
        model = build_segmenter(model_cfg, backbone, meta["img_size"])
        model.load_state_dict(tensors)
        return model.eval()
