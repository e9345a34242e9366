"""A checkpoint ready for export: the model, its task and everything a runtime needs to feed it
(frames per clip, frame step, input size, mean/std, class names, threshold).

``load_deploy_model(checkpoint)`` takes a backbone (any layout ``endofm.create_model`` reads),
a fine-tuned task directory written by ``endofm finetune`` or the released ``polypdiag.pth``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from endofm.config import to_dict
from endofm.data.formats.classes import ClassSet
from endofm.data.transforms import IMAGENET_MEAN, IMAGENET_STD, KINETICS_MEAN, KINETICS_STD
from endofm.inference.backbone import load_backbone
from endofm.inference.task_models import TaskModel, load_task_model
from endofm.models.checkpoint import MODEL_CONFIG_NAME, load_checkpoint
from endofm.runner.windows import RELEASE_FPS, RELEASE_FRAME_STEP
from endofm.tasks.classification.task import POLYPDIAG_CLASSES
from endofm.tasks.detection.evaluation import CLASS_NAMES as DETECTION_CLASS_NAMES
from endofm.tasks.detection.model import STRIDES, ClipDetector
from endofm.tasks.registry import task_for_kind

TASKS = ("backbone", "classification", "segmentation", "detection")


@dataclass
class DeployModel:
    """A model in eval mode on the CPU and how its input is made.

    The graph input is ``float32 [B, 3, num_frames, height, width]``: RGB frames
    ``frame_step`` apart (counted at ``frame_step_fps`` frames per second, rescaled to the
    video's rate; ``None``: frames of the video itself), resized as ``preprocess`` says, scaled
    to [0, 1], minus ``mean``, divided by ``std`` per channel. ``settings``: the task's model
    and data settings (JSON-ready) that rebuild its predictor; ``extra``: task-specific
    metadata (detection's pyramid levels and decoding settings).
    """

    task: str
    model: nn.Module
    num_frames: int
    height: int
    width: int
    frame_step: int
    frame_step_fps: float | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    preprocess: dict[str, Any]
    class_names: list[str] = field(default_factory=list)
    threshold: float | None = None
    head: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def checkpoint_task(path: str | Path) -> str:
    """``backbone`` or the task a checkpoint was fine-tuned for."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.is_dir():
        config = path / MODEL_CONFIG_NAME
        kind = json.loads(config.read_text()).get("kind") if config.is_file() else None
        spec = task_for_kind(kind)
        return spec.name if spec is not None else "backbone"
    return "classification" if load_checkpoint(path).layout == "polypdiag" else "backbone"


def parse_size(value: str | int | None) -> tuple[int, int] | None:
    """``224`` / ``"224"`` → (224, 224); ``"384x640"`` → (384, 640); ``None`` stays."""
    if value is None:
        return None
    parts = str(value).lower().split("x")
    try:
        sides = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"size {value!r}: give pixels (224) or HEIGHTxWIDTH (384x640)"
                         ) from None
    if len(sides) not in (1, 2) or min(sides) < 1:
        raise ValueError(f"size {value!r}: give pixels (224) or HEIGHTxWIDTH (384x640)")
    return (sides[0], sides[-1])


def load_deploy_model(checkpoint: str | Path, num_frames: int | None = None,
                      size: str | int | None = None, num_heads: int | None = None,
                      backbone_only: bool = False) -> DeployModel:
    """The checkpoint's model with its input conventions.

    Args:
        checkpoint: a backbone, a fine-tuned task directory or the released PolypDiag file.
        num_frames: frames per clip (default: the checkpoint's).
        size: input size, ``224`` or ``HEIGHTxWIDTH`` (default: the checkpoint's; detection:
            its ``min_size`` padded to a multiple of 64, the detector's square input).
        num_heads: attention heads, for released files of a width no named config has.
        backbone_only: a fine-tuned directory's backbone alone (for extraction).
    """
    if num_frames is not None and num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    task = "backbone" if backbone_only else checkpoint_task(checkpoint)
    if task == "phase":
        raise ValueError(f"{checkpoint}: a phase model is two graphs, its backbone and its "
                         "temporal model; export it with endofm.deploy.phase.export_phase "
                         "(what `endofm export` does)")
    hw = parse_size(size)
    if task == "backbone":
        deploy = _backbone(load_backbone(checkpoint, num_heads), num_frames, hw)
        deploy.extra |= {"patch_size": deploy.model.patch_size,
                         "embed_dim": deploy.model.embed_dim,
                         "attention_type": deploy.model.attention_type}
        return deploy
    task_model = load_task_model(checkpoint, task, num_heads)
    build = {"classification": _classification, "segmentation": _segmentation,
             "detection": _detection}[task]
    deploy = build(task_model, num_frames, hw)
    deploy.extra["patch_size"] = task_model.model.backbone.patch_size
    return deploy


def _square(hw: tuple[int, int] | None, default: int, task: str) -> int:
    if hw is None:
        return default
    if hw[0] != hw[1]:
        raise ValueError(f"a {task} model takes a square input; got size {hw[0]}x{hw[1]}")
    return hw[0]


def _backbone(vit: nn.Module, num_frames: int | None, hw: tuple[int, int] | None
              ) -> DeployModel:
    height, width = hw or (vit.img_size, vit.img_size)
    return DeployModel("backbone", vit, num_frames or vit.num_frames, height, width,
                       RELEASE_FRAME_STEP, RELEASE_FPS, KINETICS_MEAN, KINETICS_STD,
                       {"resize": "short_side_center_crop", "short_side": min(height, width)})


def _classification(tm: TaskModel, num_frames: int | None, hw: tuple[int, int] | None
                    ) -> DeployModel:
    cfg = tm.settings
    data = cfg.data
    t = num_frames or tm.num_frames
    side = _square(hw, tm.img_size, "classification")
    short = round(side * data.test_short_side / data.crop_size)
    classes, multi_label = classifier_classes(tm.path, tm.model.num_classes)
    data_settings = to_dict(data) | {"num_frames": t, "crop_size": side,
                                     "test_short_side": short}
    model_settings = _unbound_backbone(to_dict(cfg.model))
    return DeployModel("classification", tm.model, t, side, side, data.frame_step,
                       data.target_fps, tuple(data.mean), tuple(data.std),
                       {"resize": "short_side_center_crop", "short_side": short}, classes,
                       0.5, settings={"model": model_settings, "data": data_settings},
                       extra={"positive_class": cfg.model.positive_class,
                              "multi_label": multi_label})


def task_class_names(tm: TaskModel) -> list[str]:
    """The class names of a task model in output order (detection: labels 1, 2, …; phase: its
    phases)."""
    if tm.task == "phase":
        return list(tm.settings.data.phases)
    count = tm.settings.model.num_classes
    if tm.task == "classification":
        return classifier_classes(tm.path, tm.model.num_classes)[0]
    if tm.task == "detection":
        return [DETECTION_CLASS_NAMES.get(c, f"class_{c}") for c in range(1, count + 1)]
    return ["background", "polyp"] if count == 2 else [f"class_{c}" for c in range(count)]


def classifier_classes(path: Path, num_classes: int) -> tuple[list[str], bool]:
    """A classifier's class names in output order and whether its head is multi-label
    (``config.json``'s ``classes``; a file without them: PolypDiag's normal/abnormal for two
    classes, else the indices)."""
    config = path / MODEL_CONFIG_NAME
    meta = json.loads(config.read_text()) if config.is_file() else {}
    if "classes" in meta:
        return list(ClassSet.from_json(meta["classes"]).names), bool(meta.get("multi_label"))
    names = POLYPDIAG_CLASSES if num_classes == 2 else ClassSet.numbered(num_classes)
    return list(names.names), False


def _segmentation(tm: TaskModel, num_frames: int | None, hw: tuple[int, int] | None
                  ) -> DeployModel:
    cfg = tm.settings
    t = num_frames or tm.num_frames
    side = _square(hw, tm.img_size, "segmentation")
    classes = task_class_names(tm)
    release = cfg.data.normalization == "release"
    mean, std = ((), ()) if release else (IMAGENET_MEAN, IMAGENET_STD)
    preprocess = {"resize": "resize", "interpolation": "bilinear_antialias",
                  "normalization": "release_bgr_minmax" if release else "mean_std"}
    data_settings = to_dict(cfg.data) | {"num_frames": t, "img_size": side}
    return DeployModel("segmentation", tm.model, t, side, side, 1, None, mean, std,
                       preprocess, classes, settings={
                           "model": _unbound_backbone(to_dict(cfg.model)),
                           "data": data_settings})


def _detection(tm: TaskModel, num_frames: int | None, hw: tuple[int, int] | None
               ) -> DeployModel:
    cfg = tm.settings
    model: ClipDetector = tm.model
    t = num_frames or tm.num_frames
    if t != model.num_frames:
        model = _with_frames(model, cfg, t)
    multiple = STRIDES[-1]
    padded = math.ceil(cfg.model.min_size / multiple) * multiple
    height, width = hw or (padded, padded)
    if height % multiple or width % multiple:
        raise ValueError(f"a detector's input is padded to multiples of {multiple}; got size "
                         f"{height}x{width}")
    chosen = getattr(tm.model, "operating_threshold", None)
    threshold = 0.5 if chosen is None else chosen
    det = model.detector
    extra = {"levels": pyramid_levels(model, height, width), "strides": list(STRIDES),
             "score_thresh": det.score_thresh, "nms_thresh": det.nms_thresh,
             "topk_candidates": det.topk_candidates,
             "detections_per_img": det.detections_per_img,
             "label_offset": model.label_shift, "min_size": cfg.model.min_size,
             "max_size": cfg.model.max_size}
    names = task_class_names(tm)
    preprocess = {"resize": "fit_then_pad", "min_size": cfg.model.min_size,
                  "max_size": cfg.model.max_size, "pad_multiple": multiple,
                  "normalize_before_resize": True}
    data_settings = to_dict(cfg.data) | {"num_frames": t}
    return DeployModel("detection", model, t, height, width, cfg.data.frame_step, None,
                       KINETICS_MEAN, KINETICS_STD, preprocess, names, threshold,
                       str(cfg.model.head),
                       {"model": _unbound_backbone(to_dict(cfg.model)), "data": data_settings,
                        "operating_threshold": chosen},
                       extra)


def _unbound_backbone(model_settings: dict[str, Any]) -> dict[str, Any]:
    """The backbone's size and frame count left to follow the data settings (as when the
    task's config is loaded), so an export at another size rebuilds consistently."""
    backbone = dict(model_settings["backbone"]) | {"img_size": None, "num_frames": None}
    return model_settings | {"backbone": backbone}


def _with_frames(model: ClipDetector, cfg: Any, num_frames: int) -> ClipDetector:
    """The same detector (shared weights) for clips of ``num_frames`` frames."""
    copy = ClipDetector(cfg.model, model.backbone, num_frames)
    copy.load_state_dict(model.state_dict())
    copy.operating_threshold = getattr(model, "operating_threshold", None)
    return copy.eval()


@torch.no_grad()
def pyramid_levels(model: ClipDetector, height: int, width: int) -> list[list[int]]:
    """``[[h, w], ...]`` of the detector's pyramid levels for a ``height x width`` input."""
    packed = torch.zeros(1, 3 * model.num_frames, height, width)
    return [list(level.shape[-2:]) for level in model.detector.backbone(packed).values()]

