"""Fine-tuned task models for inference: ``load_task_model(path)`` reads a directory written by
``endofm finetune`` (classifier, segmenter, detector) or the released ``polypdiag.pth``,
through the task's own loader."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from endofm.models.checkpoint import CONFIG_NAME, run_folder_hint

KIND_TO_TASK = {"classifier": "classification", "segmenter": "segmentation",
                "detector": "detection"}


@dataclass
class TaskModel:
    """A fine-tuned model (eval mode, CPU) and what inference needs to feed it.

    ``num_frames``: frames per input clip; ``img_size``: the input size it was trained at
    (detection: the detector's ``min_size``); ``frame_stride``: detection's step between the
    clip's frames (1 elsewhere); ``settings``: the task's resolved config.
    """

    task: str
    model: nn.Module
    num_frames: int
    img_size: int
    settings: Any
    path: Path
    frame_stride: int = 1


def infer_task(path: str | Path) -> str:
    """The task a checkpoint was fine-tuned for: a directory's ``config.json`` ``kind``; a
    file is a released PolypDiag classifier."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.is_file():
        return "classification"
    config = path / CONFIG_NAME
    if not config.is_file():
        raise FileNotFoundError(f"{path}: not a fine-tuned model directory ({CONFIG_NAME} "
                                f"missing){run_folder_hint(path, CONFIG_NAME)}")
    kind = json.loads(config.read_text()).get("kind")
    if kind not in KIND_TO_TASK:
        raise ValueError(f"{config}: kind {kind!r} is not a fine-tuned task model; expected "
                         f"one of {sorted(KIND_TO_TASK)}")
    return KIND_TO_TASK[kind]


def load_task_model(path: str | Path, task: str | None = None,
                    num_heads: int | None = None) -> TaskModel:
    """Load a fine-tuned model (a folder, a released file, or an ``hf-hub:`` name).

    Args:
        path: a directory written by ``endofm finetune`` (``model.safetensors`` +
            ``config.json``, whose ``kind`` names the task), the released ``polypdiag.pth``
            (a classifier), or an ``hf-hub:OWNER/NAME`` name of either.
        task: ``classification``, ``segmentation`` or ``detection``; when given, it must
            match what the checkpoint holds (else a ``ValueError``); ``None``: what it holds.
        num_heads: the backbone's head count, for a released file of a width no named config
            has (released files do not store it); ``None``: from the file or its width.

    Returns:
        A :class:`TaskModel` (eval mode, CPU) with what inference needs to feed it. Its
        ``model`` maps clips ``[B, 3, T, H, W]`` (``T = num_frames``, ``H = W = img_size``)
        to: classification, logits ``[B, C]``; segmentation, logits ``[B, C, T, H, W]``;
        detection (a list of ``B`` clips ``[3, T, H, W]``), one dict per clip with ``boxes``
        ``[n, 4]`` (xyxy), ``scores`` ``[n]`` and ``labels`` ``[n]``.
    """
    from endofm.config import load_config
    from endofm.models.hub import resolve_weights
    from endofm.tasks import TASKS
    from endofm.tasks.base import task_config_schema

    path = resolve_weights(path)
    found = infer_task(path)
    if task is not None and task != found:
        raise ValueError(f"{path} is a {found} model, not a {task} model")
    task_obj = TASKS[found](load_config(task_config_schema(TASKS[found])))
    if num_heads:  # released files do not store the head count
        task_obj.cfg.model.backbone.num_heads = num_heads
    model = task_obj.load_model(path).eval()
    cfg = task_obj.saved_config(path)
    backbone = model.backbone
    if found == "detection":
        return TaskModel(found, model, cfg.data.num_frames, cfg.model.min_size, cfg,
                         Path(path), cfg.data.frame_step)
    if found == "segmentation":
        return TaskModel(found, model, cfg.data.num_frames, cfg.data.img_size, cfg, Path(path))
    return TaskModel(found, model, backbone.num_frames, backbone.img_size, cfg, Path(path))
