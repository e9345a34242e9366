"""The ``detection`` task: clips around each annotated frame (KUMC, or your own COCO /
COCO-VID files with any categories), a torchvision head on the Endo-FM pyramid, frame-level +
localisation + COCO metrics per category."""

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
from endofm.data.formats import ClassSet, FormatOptions, LabelledData, read_format
from endofm.data.formats.voc import is_voc
from endofm.models import backbone_config, create_model
from endofm.models.checkpoint import read_state_dir, read_state_meta, save_state_dir
from endofm.tasks.base import EngineConfig, ModelInput, Task, saved_model_settings
from endofm.tasks.detection import SPEC
from endofm.tasks.detection.data import KumcClips, collate
from endofm.tasks.detection.evaluation import KUMC_CLASSES, evaluate_clips
from endofm.tasks.detection.model import (
    ClipDetector,
    DetectionModelConfig,
    build_detector,
)
from endofm.tasks.own_data import ReleaseOrOwnData
from endofm.utils.checks import require_at_least, require_in_range


@dataclass
class DetectionDataConfig:
    """Clip length/stride around the target frame and training flips."""

    num_frames: int = 3  # frames per clip around the annotated frame
    frame_step: int = 1  # frames between a clip's frames
    flip: bool = True  # random horizontal flip (p = 0.5) of training clips and their boxes
    # auto | kumc | coco (your own COCO / COCO-VID files) | voc (Pascal VOC XML per image)
    format: str = "auto"
    # voc: the class order (classes.yaml names or a labelmap.txt); default DIR/classes.yaml or
    # DIR/labelmap.txt, else the names in the files, sorted
    classes_file: str | None = None
    image_root: str | None = None  # coco: where file_name resolves (default: beside the file)
    # coco: images without annotations are negatives, or (skip) only neighbours of annotated
    # frames (files that annotate keyframes and list every frame)
    unannotated: str = "negative"
    # coco: auto (video_id if present) | video_id | prefix | none; voc: auto (a sub-folder is
    # a video) | prefix | none
    video_of: str = "auto"

    def __post_init__(self) -> None:
        require_at_least(self, "data", 1, "num_frames", "frame_step")


@dataclass
class DetectionEvalConfig:
    """Score threshold of the frame-level and localisation F1s; evaluation batch size.

    With ``choose_threshold`` every selection evaluation (the validation carve-out) picks the
    operating threshold that maximises ``f1_center`` and the saved model keeps it
    (``config.json``: ``operating_threshold``); later evaluations report their metrics at it and,
    under ``at_release_threshold``, at ``score_threshold`` (the release's 0.5).
    """

    score_threshold: float = 0.5  # score threshold of the F1s when no operating threshold is kept
    # pick and keep the threshold maximising f1_center on the validation part
    choose_threshold: bool = True
    batch_size: int = 4  # clips per evaluation forward pass

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


FORMATS = ("auto", *SPEC.formats)


def detection_format(root: Path, setting: str) -> str:
    """``data.format``, or (``auto``) ``kumc`` for ``{split}2019/Image`` folders, ``voc`` for
    Pascal VOC files (``Annotations/``, or XML files beside images), else ``coco``."""
    if setting not in FORMATS:
        raise ValueError(f"data.format must be one of {', '.join(FORMATS)} for detection, got "
                         f"{setting!r}")
    if setting != "auto":
        return setting
    kumc = root.is_dir() and any((root / f"{s}2019" / "Image").is_dir()
                                 for s in ("train", "val", "test"))
    if kumc:
        return "kumc"
    return "voc" if is_voc(root) else "coco"


class DetectionTask(ReleaseOrOwnData, Task):
    """Detection on the engine (``endofm finetune|evaluate detection``): KUMC, or your own
    COCO / COCO-VID files with their categories."""

    name = "detection"
    release_format = "kumc"
    config_class = DetectionConfig
    selection_metric = "ap50"
    test_split = "test"
    formats = FORMATS

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.classes: ClassSet | None = None  # the data's categories, or the loaded model's
        self._data: dict[Path, LabelledData] = {}

    def class_set(self) -> ClassSet:
        if self.classes is not None:
            return self.classes
        count = self.cfg.model.num_classes
        return KUMC_CLASSES if count in (None, 2) else ClassSet.numbered(count)

    def bind_data(self, root: str | Path) -> None:
        self.format = detection_format(Path(root), str(self.cfg.data.format))

    def build_model(self, pretrained: str | Path | None = None) -> ClipDetector:
        """The detector with a class per category; its backbone from ``pretrained`` (the
        engine passes ``--pretrained`` or ``model.backbone.pretrained``)."""
        backbone = self.backbone_settings(pretrained)
        return build_detector(dataclasses.replace(self.cfg.model, backbone=backbone,
                                                  num_classes=len(self.class_set())),
                              self.cfg.data.num_frames)

    def adopt(self, classes: ClassSet) -> None:
        """Take the data's categories (training), checking ``model.num_classes``."""
        if self.classes is None:
            classes.check_count(self.cfg.model.num_classes, "model.num_classes")
            self.classes = classes
            self.cfg.model.num_classes = len(classes)  # recorded in config.yaml

    def labelled(self, root: Path) -> LabelledData:
        if root not in self._data:
            data = self.cfg.data
            options = FormatOptions(data.classes_file, known_classes=self.classes,
                                    image_root=data.image_root, unannotated=data.unannotated,
                                    video_of=data.video_of)
            self._data[root] = read_format(self.format or "coco", root, options)
        return self._data[root]

    def read_items(self, root: str | Path, split: str) -> list[KumcVideo]:
        root = Path(root)
        if self.format is None:
            self.bind_data(root)
        if self.format == "kumc":
            self.adopt(KUMC_CLASSES)
            videos = read_kumc(root, split)
            if not videos:
                raise ValueError(f"{root}: the KUMC {split!r} split has no videos")
            return videos
        data = self.labelled(root)
        self.adopt(data.classes)
        protocol = self.cfg.protocol
        videos = data.plan.select(split, protocol.test_fraction, protocol.val_seed)
        if split != "val" and not any(f.annotated for v in videos for f in v.frames):
            raise ValueError(f"{root}: the {split} split has no annotated frames")
        return videos

    def describe_item(self, item: KumcVideo) -> str:
        return item.name

    def train_dataset(self, items: Sequence) -> KumcClips:
        data = self.cfg.data
        return KumcClips(list(items), data.num_frames, data.frame_step, augment=data.flip)

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
        dataset = KumcClips(list(items), data.num_frames, data.frame_step)
        choose = out_dir is None and ev.choose_threshold
        result = evaluate_clips(getattr(model, "module", model), dataset, device, precision,
                                self.class_set(), ev.score_threshold, out_dir, ev.batch_size,
                                choose)
        return result | {"classes": self.class_set().to_json()}

    def save_model(self, model: nn.Module, out_dir: Path) -> Path:
        """``model.safetensors`` + ``config.json`` (model settings, backbone architecture,
        clip length and stride)."""
        model = getattr(model, "module", model)
        classes = self.class_set()
        meta = {"kind": self.kind, "task": self.name, "format": "endofm",
                "model": to_dict(self.cfg.model) | {"num_classes": len(classes)},
                "backbone": backbone_config(model.backbone), "data": to_dict(self.cfg.data),
                "operating_threshold": getattr(model, "operating_threshold", None),
                "classes": classes.to_json()}
        return save_state_dir(model.state_dict(), meta, out_dir)

    def saved_config(self, path: str | Path) -> DetectionConfig:
        """This config with the saved model's ``model`` and clip (``data``) settings."""
        meta = read_state_meta(path, self.kind)
        return dataclasses.replace(
            self.cfg, model=saved_model_settings(DetectionModelConfig, meta["model"]),
            data=from_dict(DetectionDataConfig, meta["data"]))

    def load_model(self, path: str | Path) -> ClipDetector:
        """Load a directory written by :meth:`save_model` (in eval mode)."""
        meta, tensors = read_state_dir(path, self.kind)
        model_cfg = saved_model_settings(DetectionModelConfig, meta["model"])
        backbone = create_model(model_cfg.backbone.name, drop_path_rate=0.0, **meta["backbone"])
        self.classes = (ClassSet.from_json(meta["classes"]) if "classes" in meta
                        else KUMC_CLASSES)
        model_cfg = dataclasses.replace(model_cfg, num_classes=len(self.classes))
        model = ClipDetector(model_cfg, backbone, meta["data"]["num_frames"])
        model.load_state_dict(tensors)
        self._data.clear()
        model.operating_threshold = meta.get("operating_threshold")
        return model.eval()

    def model_input(self, model: nn.Module) -> ModelInput:
        """Clips of ``data.num_frames`` frames ``data.frame_step`` apart at the detector's
        ``model.min_size``."""
        return ModelInput(self.cfg.data.num_frames, self.cfg.model.min_size,
                          self.cfg.data.frame_step)
