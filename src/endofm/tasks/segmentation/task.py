"""The ``segmentation`` task: CVC-12k windows, CE + Dice loss, whole-sequence evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from endofm.data import CvcSequence, read_cvc
from endofm.tasks.segmentation.data import SegmentationWindows
from endofm.tasks.segmentation.evaluation import evaluate_sequences
from endofm.tasks.segmentation.loss import CEDiceLoss
from endofm.tasks.segmentation.model import (
    SegmentationModelConfig,
    build_backbone,
    build_segmenter,
)


@dataclass
class SegmentationDataConfig:
    """Which sequences, at what size, in windows of how many frames.

    ``protocol`` (``endofm.data.read_cvc``): ``"files"`` reads ``train.txt``/``test.txt``
    (``first_frame length`` lines) from ``split_dir`` (default: the data root); ``"release"``
    is the release's leaky split (it warns); ``"leakfree"`` drops the test sequences from it.
    """

    protocol: str = "files"
    split_dir: str | None = None
    img_size: int = 224
    num_frames: int = 8
    train_stride: int = 4
    eval_stride: int = 4
    crop_margin: int = 32
    rotation: float = 5.0


@dataclass
class SegmentationLossConfig:
    ce_weight: float = 0.5
    dice_weight: float = 0.5


@dataclass
class SegmentationSettings:
    """The segmentation-specific part of the task config."""

    model: SegmentationModelConfig = field(default_factory=SegmentationModelConfig)
    data: SegmentationDataConfig = field(default_factory=SegmentationDataConfig)
    loss: SegmentationLossConfig = field(default_factory=SegmentationLossConfig)


def read_sequences(root: str | Path, split: str, data: SegmentationDataConfig
                   ) -> list[CvcSequence]:
    """CVC sequences of ``split`` (``"train"``/``"test"``) under ``root`` (none is an error)."""
    sequences = read_cvc(root, split, protocol=data.protocol, split_dir=data.split_dir)
    if not sequences:
        raise ValueError(f"{root}: the {data.protocol!r} {split!r} split has no sequences")
    return sequences


class SegmentationTask:
    """Builds the model, datasets and loss from ``SegmentationSettings`` and evaluates."""

    name = "segmentation"
    selection_metric = "dice"

    def __init__(self, cfg: SegmentationSettings) -> None:
        self.cfg = cfg
        self.criterion = CEDiceLoss(cfg.loss.ce_weight, cfg.loss.dice_weight)

    def build_model(self) -> nn.Module:
        data = self.cfg.data
        backbone = build_backbone(self.cfg.model, data.img_size, data.num_frames)
        return build_segmenter(self.cfg.model, backbone, data.img_size)

    def build_train_dataset(self, root: str | Path) -> SegmentationWindows:
        data = self.cfg.data
        return SegmentationWindows(read_sequences(root, "train", data), data.num_frames,
                                   data.train_stride, data.img_size, augment=True,
                                   margin=data.crop_margin, rotation=data.rotation)

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """``batch``: clips ``[B, 3, T, S, S]`` and masks ``[B, T, S, S]`` on the model's device."""
        clips, masks = batch
        return self.criterion(model(clips), masks)

    def evaluate(self, model: nn.Module, sequences: list, device: torch.device,
                 precision: str = "fp32", out_dir: Path | None = None) -> dict:
        data = self.cfg.data
        return evaluate_sequences(model, sequences, data.img_size, data.num_frames,
                                  data.eval_stride, device, precision, out_dir)
