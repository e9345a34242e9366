"""An exported task model as a :class:`~endofm.inference.task_models.TaskModel` whose model
runs on ONNX Runtime, so the task's predictor (preprocessing, decisions, files) is unchanged
and only the model call differs.

The task's settings come from the file's metadata (``settings``); the adapters take what the
PyTorch model takes and return what it returns.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.models.detection.anchor_utils import AnchorGenerator

from endofm.config import from_dict, load_config
from endofm.deploy.detection import OnnxDetector
from endofm.deploy.runtime import OnnxModel
from endofm.inference.task_models import TaskModel
from endofm.tasks import TASKS
from endofm.tasks.base import task_config_schema
from endofm.tasks.detection.model import ClipDetector, build_detector


class PatchGrid(nn.Module):
    """Stands for the backbone where a predictor asks only its ``patch_size``."""

    def __init__(self, patch_size: int) -> None:
        super().__init__()
        self.patch_size = patch_size


class OnnxLogits(nn.Module):
    """``[B, 3, T, H, W]`` → the graph's first output (classification ``[B, C]``,
    segmentation ``[B, C, T, H, W]`` logits), as the PyTorch model returns them."""

    def __init__(self, session: OnnxModel) -> None:
        super().__init__()
        self.session = session
        self.backbone = PatchGrid(session.metadata.get("patch_size", 16))

    def forward(self, clips: Tensor) -> Tensor:
        return self.session(clips)[0].to(clips.device)


class OnnxBackbone(nn.Module):
    """An exported backbone where endofm uses a ``VisionTransformer`` for features:
    ``forward_features(x [B, 3, T, H, W]) -> tokens [B, 1 + N*T, D]``, ``forward`` the
    embedding ``[B, D]``, and the attributes extraction reads."""

    def __init__(self, session: OnnxModel) -> None:
        super().__init__()
        meta = session.metadata
        if meta["task"] == "phase":
            raise ValueError(f"{session.path} is a phase export's temporal model; its backbone, "
                             f"for extraction, is {session.path.with_name(meta['backbone'])}")
        if meta["task"] != "backbone":
            raise ValueError(f"{session.path} is an exported {meta['task']} model, not a "
                             "backbone (export the backbone, or its fine-tuned directory's "
                             "backbone, for extraction)")
        self.session = session
        self.num_frames, self.img_size = meta["num_frames"], meta["height"]
        self.patch_size, self.embed_dim = meta["patch_size"], meta["embed_dim"]
        self.attention_type = meta["attention_type"]

    def forward_features(self, clips: Tensor) -> Tensor:
        return self.session(clips)[1].to(clips.device)

    def forward(self, clips: Tensor) -> Tensor:
        return self.session(clips)[0].to(clips.device)


def task_settings(task: str, saved: dict[str, Any]) -> Any:
    """The task's config with the exported model's ``model`` and ``data`` sections."""
    cfg = load_config(task_config_schema(TASKS[task]))
    return dataclasses.replace(cfg, model=from_dict(type(cfg.model), saved["model"]),
                               data=from_dict(type(cfg.data), saved["data"]))


def detector_skeleton(cfg: Any, num_frames: int) -> ClipDetector:
    """The detector's transform and postprocessing without weights (built on the meta device;
    the anchor generator is remade on the CPU, its cell anchors being plain tensors)."""
    model = dataclasses.replace(cfg.model, backbone=dataclasses.replace(cfg.model.backbone,
                                                                         pretrained=None))
    with torch.device("meta"):
        skeleton = build_detector(model, num_frames)
    gen = skeleton.detector.anchor_generator
    skeleton.detector.anchor_generator = AnchorGenerator(gen.sizes, gen.aspect_ratios)
    return skeleton


def load_onnx_task_model(path: str | Path, device: str = "auto", threads: int | None = None
                         ) -> tuple[TaskModel, dict[str, Any]]:
    """The exported task model at ``path`` on ONNX Runtime (``device``: auto, cpu, cuda,
    tensorrt) and the file's metadata. A backbone export is a ``ValueError`` (it has no
    task); a phase export's model is its temporal graph (the backbone graph beside it)."""
    session = OnnxModel(path, device, threads)
    meta = session.metadata
    task = meta["task"]
    if task == "backbone":
        raise ValueError(f"{path} is an exported backbone; it has no task to predict "
                         "(use it with `endofm extract --runtime onnx`)")
    if task == "phase":
        from endofm.deploy.phase import OnnxPhaseModel
        from endofm.tasks.base import InputKind
        from endofm.tasks.phase.task import saved_phase_config

        cfg = saved_phase_config(meta["settings"])
        return TaskModel(task, OnnxPhaseModel(session, device), meta["num_frames"],
                         meta["size"], cfg, Path(path), meta["frame_step"],
                         InputKind.features), meta
    cfg = task_settings(task, meta["settings"])
    if task == "detection":
        model = OnnxDetector(session, detector_skeleton(cfg, meta["num_frames"]),
                             meta["levels"], meta["outputs"], (meta["height"], meta["width"]),
                             meta["settings"].get("operating_threshold"))
        return TaskModel(task, model, meta["num_frames"], cfg.model.min_size, cfg, Path(path),
                         cfg.data.frame_step), meta
    return TaskModel(task, OnnxLogits(session), meta["num_frames"], meta["height"], cfg,
                     Path(path)), meta
