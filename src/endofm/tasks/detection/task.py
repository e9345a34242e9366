"""The ``detection`` task: KUMC clips around each annotated frame, a torchvision head on the
Endo-FM pyramid, frame-level + localisation + COCO metrics."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from endofm.config import from_dict, to_dict
from endofm.data import KumcVideo, read_kumc
from endofm.models import backbone_config, create_model
from endofm.models.checkpoint import read_state_dir, read_state_meta, save_state_dir
from endofm.tasks.base import EngineConfig, Task, saved_model_settings
from endofm.tasks.detection.data import KumcClips, collate
from endofm.tasks.detection.evaluation import evaluate_clips
from endofm.tasks.detection.model import (
    ClipDetector,
    DetectionModelConfig,
    build_detector,
)
from endofm.utils.checks import require_at_least, require_in_range

KIND = "detector"


@dataclass
class DetectionDataConfig:
    """Clip length/stride around the target frame and training flips."""

    num_frames: int = 3
    frame_stride: int = 1
    flip: bool = True

    def __post_init__(self) -> None:
        require_at_least(self, "data", 1, "num_frames", "frame_stride")


@dataclass
class DetectionEvalConfig:
    """Score threshold of the frame-level and localisation F1s; evaluation batch size.

    With ``choose_threshold`` every selection evaluation (the validation carve-out) picks the
    operating threshold that maximises ``f1_center`` and the saved model keeps it
    (``config.json``: ``operating_threshold``); later evaluations report their metrics at it and,
    under ``at_release_threshold``, at ``score_threshold`` (the release's 0.5).
    """

    score_threshold: float = 0.5
    choose_threshold: bool = True
    batch_size: int = 4

    def __post_init__(self) -> None:
        require_in_range(self, "eval", 0, 1, "score_threshold")
        require_at_least(self, "eval", 1, "batch_size")


@dataclass
class DetectionConfig(EngineConfig):
    """The detection task's config: its sections plus the engine's."""

    model: DetectionModelConfig = field(default_factory=DetectionModelConfig)
    data: DetectionDataConfig = field(default_factory=DetectionDataConfig)
    eval: DetectionEvalConfig = field(default_factory=DetectionEvalConfig)

    def __post_init__(self) -> None:
        self.model.backbone.bind(self.model.min_size, self.data.num_frames,
                                 "model.min_size/data.num_frames")


class DetectionTask(Task):
    """KUMC detection on the engine (``endofm finetune|evaluate detection``)."""

    name = "detection"
    config_class = DetectionConfig
    selection_metric = "ap50"
    test_split = "test"

    def build_model(self, pretrained: str | Path | None = None) -> ClipDetector:
        """The detector; its backbone from ``pretrained`` (the engine passes ``--pretrained`` or
        ``model.backbone.pretrained``)."""
        backbone = self.backbone_settings(pretrained)
        return build_detector(dataclasses.replace(self.cfg.model, backbone=backbone),
                              self.cfg.data.num_frames)

    def read_items(self, root: str | Path, split: str) -> list[KumcVideo]:
        videos = read_kumc(root, split)
        if not videos:
            raise ValueError(f"{root}: the KUMC {split!r} split has no videos")
        return videos

    def train_dataset(self, items: Sequence) -> KumcClips:
        data = self.cfg.data
        return KumcClips(list(items), data.num_frames, data.frame_stride, augment=data.flip)

    def collate(self, batch: list) -> Any:
        return collate(batch)

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """The sum of the head's losses; ``batch`` from :func:`collate`, on the model's device."""
        clips, targets, _ = batch
        return sum(model(clips, targets).values())

    def evaluate(self, model: nn.Module, items: Sequence, device: torch.device,
                 precision: str = "fp32", out_dir: Path | None = None) -> dict[str, Any]:
        """Metrics on ``items``; a selection evaluation (no ``out_dir``) also chooses the
        model's operating threshold (see :class:`DetectionEvalConfig`)."""
        data, ev = self.cfg.data, self.cfg.eval
        dataset = KumcClips(list(items), data.num_frames, data.frame_stride)
        choose = out_dir is None and ev.choose_threshold
        return evaluate_clips(getattr(model, "module", model), dataset, device, precision,
                              self.cfg.model.num_classes, ev.score_threshold, out_dir,
                              ev.batch_size, choose)

    def save_model(self, model: nn.Module, out_dir: Path) -> Path:
        """``model.safetensors`` + ``config.json`` (model settings, backbone architecture,
        clip length and stride)."""
        model = getattr(model, "module", model)
        meta = {"kind": KIND, "format": "endofm", "model": to_dict(self.cfg.model),
                "backbone": backbone_config(model.backbone), "data": to_dict(self.cfg.data),
                "operating_threshold": getattr(model, "operating_threshold", None)}
        return save_state_dir(model.state_dict(), meta, out_dir)

    def saved_config(self, path: str | Path) -> DetectionConfig:
        """This config with the saved model's ``model`` and clip (``data``) settings."""
        meta = read_state_meta(path, KIND)
        return dataclasses.replace(
            self.cfg, model=saved_model_settings(DetectionModelConfig, meta["model"]),
            data=from_dict(DetectionDataConfig, meta["data"]))

    def load_model(self, path: str | Path) -> ClipDetector:
        """Load a directory written by :meth:`save_model` (in eval mode)."""
        meta, tensors = read_state_dir(path, KIND)
        model_cfg = saved_model_settings(DetectionModelConfig, meta["model"])
        backbone = create_model(model_cfg.backbone.name, drop_path_rate=0.0, **meta["backbone"])
        model = ClipDetector(model_cfg, backbone, meta["data"]["num_frames"])
        model.load_state_dict(tensors)
        model.operating_threshold = meta.get("operating_threshold")
        return model.eval()
