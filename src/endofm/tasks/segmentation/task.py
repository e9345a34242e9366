"""The ``segmentation`` task: CVC-12k or your own frames and masks (``data.format``:
``image_masks``, any number of named classes), windows of neighbouring frames, CE + Dice loss,
whole-sequence evaluation with per-class Dice and IoU."""

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
from endofm.data.datasets.cvc import image_dirs
from endofm.data.formats import ClassSet, FormatOptions, LabelledData, MaskCodec, read_format
from endofm.data.formats.masks import background_index
from endofm.models import backbone_config, create_backbone, create_model
from endofm.models.checkpoint import read_state_dir, read_state_meta, save_state_dir
from endofm.tasks.base import EngineConfig, ModelInput, Task, saved_model_settings
from endofm.tasks.own_data import ReleaseOrOwnData
from endofm.tasks.segmentation import SPEC
from endofm.tasks.segmentation.data import (
    MaskDecoder,
    Normalization,
    SegmentationWindows,
    read_mask,
)
from endofm.tasks.segmentation.evaluation import CVC_CLASSES, evaluate_sequences
from endofm.tasks.segmentation.loss import CEDiceLoss, DiceDenominator
from endofm.tasks.segmentation.model import (
    SegmentationModelConfig,
    build_segmenter,
)
from endofm.utils.checks import require_at_least


class WindowMode(StrEnum):
    """``frames``: windows of ``data.num_frames`` frames (``train_stride`` / ``eval_stride``
    apart), predictions stitched; ``whole_sequence``: each sequence is one input, T = its length
    (6-25 frames in CVC-12k), ``train.batch_size`` 1 (the release)."""

    frames = "frames"
    whole_sequence = "whole_sequence"


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

    # auto | cvc | image_masks (your own frames and masks) | coco (polygons / RLE drawn as masks)
    format: str = "auto"
    classes_file: str | None = None  # image_masks: default DIR/classes.yaml; none: binary
    mask_suffix: str = "_mask"  # image_masks: masks named <frame stem><suffix>.<ext>
    # image_masks: the frames' folder under the data folder where it is not images/ or
    # JPEGImages/; one whole * folder matches each video's (*/left_frames)
    image_folder: str | None = None
    # image_masks: the masks' folder where it is not masks/, labels/, annotations/ or
    # SegmentationClass/; with the * of data.image_folder (*/labels)
    mask_folder: str | None = None
    ignore_index: int | None = None  # image_masks: a mask value no loss or metric counts
    image_root: str | None = None  # coco: where file_name resolves (default: beside the file)
    unannotated: str = "negative"  # coco: frames without annotations: background, or skip
    video_of: str = "auto"  # coco: auto (video_id if present) | video_id | prefix | none
    # CVC split: files, release (leaky) or leakfree (see above)
    protocol: CvcProtocol = CvcProtocol.files
    # folder of train.txt/test.txt (protocol files); null: the data root
    split_dir: str | None = None
    img_size: int = 224  # side (px) of the square frames and masks the model sees
    num_frames: int = 8  # frames per window
    train_stride: int = 4  # frames between the starts of consecutive training windows
    eval_stride: int = 4  # frames between the starts of consecutive evaluation windows
    # training frames are resized to img_size + this, then cropped to img_size (px)
    crop_margin: int = 32
    rotation: float = 5.0  # training random rotation within ± this (degrees)
    # frames: windows of num_frames frames (train_stride / eval_stride apart), predictions
    # stitched; whole_sequence: each sequence is one input, T = its length (6-25 frames in
    # CVC-12k), train.batch_size 1 (the release)
    window: WindowMode = WindowMode.frames
    # imagenet: RGB with ImageNet mean/std; release: BGR channel order (OpenCV fed as RGB),
    # each frame min-max stretched before and after augmentation, then (x - 0.5) / 0.5
    normalization: Normalization = Normalization.imagenet
    # false: one crop/flip/rotation for all frames of a window; true: drawn per frame (release)
    augment_per_frame: bool = False

    def __post_init__(self) -> None:
        require_at_least(self, "data", 1, "img_size", "num_frames", "train_stride", "eval_stride")
        require_at_least(self, "data", 0, "crop_margin", "rotation")


@dataclass
class SegmentationLossConfig:
    ce_weight: float = 0.5  # weight of the cross-entropy term
    dice_weight: float = 0.5  # weight of the soft Dice term
    # soft Dice denominator: sum (Σp + Σg) or squares (Σp² + Σg², the release)
    dice_denominator: DiceDenominator = DiceDenominator.sum

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


def saved_normalization(meta: dict[str, Any]) -> Normalization:
    """The input normalisation a saved model's ``config.json`` records (``normalise`` in
    folders written before the setting was renamed; ImageNet when it records none)."""
    return Normalization(meta.get("normalization", meta.get("normalise", "imagenet")))


def read_sequences(root: str | Path, split: str, data: SegmentationDataConfig
                   ) -> list[CvcSequence]:
    """CVC sequences of ``split`` (``"train"``/``"test"``) under ``root`` (none is an error)."""
    sequences = read_cvc(root, split, protocol=data.protocol, split_dir=data.split_dir)
    if not sequences:
        raise ValueError(f"{root}: the {data.protocol!r} {split!r} split has no sequences")
    return sequences


FORMATS = ("auto", *SPEC.formats)
CVC_CODEC = MaskCodec(CVC_CLASSES, "binary")


def segmentation_format(root: Path, setting: str) -> str:
    """``data.format``, or (``auto``) ``coco`` for a ``.json`` file, ``cvc`` for a
    ``CVC-ClinicDB/Original`` folder, else ``image_masks``."""
    if setting not in FORMATS:
        raise ValueError(f"data.format must be one of {', '.join(FORMATS)} for segmentation, "
                         f"got {setting!r}")
    if setting != "auto":
        return setting
    if root.is_file() and root.suffix.lower() == ".json":
        return "coco"
    return "cvc" if image_dirs(root)[0].is_dir() else "image_masks"


class SegmentationTask(ReleaseOrOwnData, Task):
    """Video segmentation (CVC-12k, or your own frames and masks with any number of named
    classes); the kept model is selected on Dice (binary: the polyp's; else the mean over the
    foreground classes)."""

    name = "segmentation"
    release_format = "cvc"
    config_class = SegmentationConfig
    selection_metric = "dice"
    formats = FORMATS

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.codec: MaskCodec | None = None  # the data's mask classes, or the loaded model's
        self.data_masks: Any = None  # the decoder of the data read last
        self._data: dict[Path, LabelledData] = {}
        if cfg.data.window == WindowMode.whole_sequence and cfg.train.batch_size != 1:
            raise ValueError("data.window=whole_sequence feeds sequences of different lengths: "
                             f"set train.batch_size=1 (got {cfg.train.batch_size})")
        self.criterion = CEDiceLoss(cfg.loss.ce_weight, cfg.loss.dice_weight,
                                    cfg.loss.dice_denominator)

    def mask_codec(self) -> MaskCodec:
        return self.codec if self.codec is not None else CVC_CODEC

    def bind_data(self, root: str | Path) -> None:
        self.format = segmentation_format(Path(root), str(self.cfg.data.format))

    def build_model(self, pretrained: str | Path | None = None) -> nn.Module:
        """The ``model.variant`` segmenter sized to the data's classes; its backbone from
        ``pretrained`` (the engine passes ``--pretrained`` or ``model.backbone.pretrained``)."""
        backbone = create_backbone(self.backbone_settings(pretrained))
        return build_segmenter(self.cfg.model, backbone, self.cfg.data.img_size,
                               len(self.mask_codec().classes))

    def labelled(self, root: Path) -> LabelledData:
        if root not in self._data:
            data = self.cfg.data
            options = FormatOptions(data.classes_file, self.cfg.model.num_classes,
                                    mask_suffix=data.mask_suffix,
                                    ignore_index=data.ignore_index, known_masks=self.codec,
                                    image_folder=data.image_folder,
                                    mask_folder=data.mask_folder,
                                    image_root=data.image_root, unannotated=data.unannotated,
                                    video_of=data.video_of)
            reader = "coco_masks" if self.format == "coco" else "image_masks"
            self._data[root] = read_format(reader, root, options)
        return self._data[root]

    def adopt(self, codec: MaskCodec) -> None:
        """Take the data's mask classes (training), checking ``model.num_classes``."""
        if self.codec is None:
            hint = ("" if codec.encoding != "binary" else
                    "; masks without a classes.yaml are binary: declare the classes in "
                    "DIR/classes.yaml (name: value)")
            try:
                codec.classes.check_count(self.cfg.model.num_classes, "model.num_classes")
            except ValueError as exc:
                raise ValueError(f"{exc}{hint}") from None
            self.codec = codec
            self.cfg.model.num_classes = len(codec.classes)  # recorded in config.yaml

    def read_items(self, root: str | Path, split: str) -> list[CvcSequence]:
        root = Path(root)
        if self.format is None:
            self.bind_data(root)
        if self.format == "cvc":
            self.adopt(CVC_CODEC)
            return read_sequences(root, split, self.cfg.data)
        data = self.labelled(root)
        self.adopt(data.masks)
        self.data_masks = data.masks  # decodes this data's masks (a model's codec may not)
        protocol = self.cfg.protocol
        items = data.plan.select(split, protocol.test_fraction, protocol.val_seed)
        if not items and split != "val":
            raise ValueError(f"{root}: the {split} split has no sequences")
        return items

    def describe_item(self, item: CvcSequence) -> str:
        return item.name

    def train_dataset(self, items: Sequence) -> SegmentationWindows:
        data = self.cfg.data
        return SegmentationWindows(items, data.num_frames, data.train_stride, data.img_size,
                                   augment=True, margin=data.crop_margin, rotation=data.rotation,
                                   whole_sequence=data.window == WindowMode.whole_sequence,
                                   per_frame=data.augment_per_frame,
                                   normalization=data.normalization,
                                   decode=self.decoder())

    def decoder(self) -> MaskDecoder:
        """CVC's masks keep their reader; others decode through the data's codec."""
        if self.from_release():
            return read_mask
        return (self.data_masks or self.mask_codec()).decode

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """``batch``: clips ``[B, 3, T, S, S]`` and masks ``[B, T, S, S]`` on the model's device."""
        clips, masks = batch
        return self.criterion(model(clips), masks)

    def evaluate(self, model: nn.Module, items: Sequence, device: torch.device,
                 precision: str = "fp32", out_dir: Path | None = None) -> dict[str, Any]:
        data = self.cfg.data
        window = None if data.window == WindowMode.whole_sequence else data.num_frames
        codec = self.mask_codec()
        result = evaluate_sequences(model, items, data.img_size, window, data.eval_stride,
                                    device, precision, out_dir, data.normalization, self.decoder(),
                                    codec.classes, background_index(codec.classes))
        return result | {"classes": codec.classes.to_json()}

    def save_model(self, model: nn.Module, out_dir: Path) -> Path:
        """``model.safetensors`` + ``config.json`` (model settings, backbone architecture,
        input size and window length)."""
        model = getattr(model, "module", model)
        classes = self.mask_codec().classes
        settings = to_dict(self.cfg.model) | {"num_classes": len(classes)}
        meta = {"kind": self.kind, "task": self.name, "format": "endofm", "model": settings,
                "backbone": backbone_config(model.backbone),
                "img_size": self.cfg.data.img_size, "num_frames": self.cfg.data.num_frames,
                "normalization": str(self.cfg.data.normalization),
                "classes": classes.to_json(), "background": background_index(classes),
                "masks": self.mask_codec().to_json()}
        return save_state_dir(model.state_dict(), meta, out_dir)

    def saved_config(self, path: str | Path) -> SegmentationConfig:
        """This config with the saved model's input size, window length and input
        normalisation, so evaluation and prediction match training."""
        meta = read_state_meta(path, self.kind)
        data = dataclasses.replace(self.cfg.data, img_size=meta["img_size"],
                                   num_frames=meta["num_frames"],
                                   normalization=saved_normalization(meta))
        return dataclasses.replace(
            self.cfg, data=data, model=saved_model_settings(SegmentationModelConfig, meta["model"]))

    def load_model(self, path: str | Path) -> nn.Module:
        """Load a directory written by :meth:`save_model` (in eval mode)."""
        meta, tensors = read_state_dir(path, self.kind)
        model_cfg = saved_model_settings(SegmentationModelConfig, meta["model"])
        backbone = create_model(model_cfg.backbone.name, drop_path_rate=0.0, **meta["backbone"])
        if "classes" in meta:
            self.codec = MaskCodec.from_json(ClassSet.from_json(meta["classes"]), meta["masks"])
        else:
            self.codec = CVC_CODEC
        model = build_segmenter(model_cfg, backbone, meta["img_size"], len(self.codec.classes))
        model.load_state_dict(tensors)
        self._data.clear()
        return model.eval()

    def model_input(self, model: nn.Module) -> ModelInput:
        """Windows of ``data.num_frames`` consecutive frames at ``data.img_size``."""
        return ModelInput(self.cfg.data.num_frames, self.cfg.data.img_size)
