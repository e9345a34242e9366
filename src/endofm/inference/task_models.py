"""Fine-tuned task models for inference: ``load_task_model(path)`` reads a model written by
``endofm finetune`` (its folder, or the folder's ``model.safetensors`` alone) for any registered
task, or a released single-file checkpoint a task reads (the release's ``polypdiag.pth``),
through the task's own loader. Which task a model belongs to is read from the ``kind`` it records
(:func:`endofm.tasks.task_for_kind`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from endofm.models.checkpoint import (
    MODEL_CONFIG_NAME,
    CheckpointError,
    read_state_meta,
    run_folder_hint,
    weights_metadata,
)
from endofm.tasks.base import InputKind
from endofm.tasks.registry import TaskSpec, get_task, task_for_kind, task_specs


@dataclass
class TaskModel:
    """A fine-tuned model (eval mode, CPU) and what inference needs to feed it.

    ``num_frames``: frames per input clip; ``img_size``: the input size it was trained at
    (detection: the detector's ``min_size``); ``frame_step``: the step between the clip's
    frames in the video (detection's ``data.frame_step``; 1 elsewhere); ``settings``: the
    task's resolved config; ``input_kind``: whether the model takes the video's windows or
    their features (:class:`~endofm.tasks.base.InputKind`: a phase model's clips are what its
    backbone encodes).
    """

    task: str
    model: nn.Module
    num_frames: int
    img_size: int
    settings: Any
    path: Path
    frame_step: int | str = 1
    input_kind: InputKind = InputKind.windows


def saved_task(path: str | Path) -> TaskSpec | None:
    """The registered task of a model endofm wrote (a folder with ``config.json``, or a
    self-describing ``model.safetensors``), read from the ``kind`` it records; ``None`` for a
    backbone, a foreign file or a folder without a model."""
    path = Path(path)
    if path.is_file():
        meta = weights_metadata(path) or {}
    elif (path / MODEL_CONFIG_NAME).is_file():
        try:
            meta = json.loads((path / MODEL_CONFIG_NAME).read_text())
        except (OSError, ValueError):
            return None
    else:
        return None
    return task_for_kind(meta.get("kind")) if isinstance(meta, dict) else None


def infer_task(path: str | Path, task: str | None = None) -> TaskSpec:
    """The task a checkpoint was fine-tuned for: the ``kind`` an endofm model records, else,
    for a single released file, the task that reads that file's layout (``task``, when given,
    must be one of them)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    found = saved_task(path)
    if found is not None:
        return found
    if path.is_file():
        return _released_task(path, task)
    meta = read_state_meta(path)  # a missing config.json / weights file is an error here
    kinds = ", ".join(spec.kind for spec in task_specs())
    raise CheckpointError(f"{path / MODEL_CONFIG_NAME}: kind {meta.get('kind')!r} is not a "
                          f"fine-tuned task model; expected one of {kinds}"
                          f"{run_folder_hint(path, MODEL_CONFIG_NAME)}")


def _released_task(path: Path, task: str | None) -> TaskSpec:
    """The task reading a released single-file checkpoint of ``path``'s layout."""
    from endofm.models import load_checkpoint

    readers = [spec for spec in task_specs() if spec.released_layouts]
    if task is not None:
        readers = [spec for spec in readers if spec.name == task]
    if len(readers) != 1:
        layout = load_checkpoint(path).layout
        readers = [spec for spec in readers if layout in spec.released_layouts]
    if not readers:
        what = f"the {task} task" if task else "no task"
        raise CheckpointError(f"{path}: {what} reads this file as a fine-tuned model; give a "
                              "model folder written by `endofm finetune`")
    return readers[0]


def load_task_model(path: str | Path, task: str | None = None,
                    num_heads: int | None = None) -> TaskModel:
    """Load a fine-tuned model (a folder, its ``model.safetensors`` alone, a released file, or
    an ``hf-hub:`` name) through its registered task's loader.

    Args:
        path: a directory written by ``endofm finetune`` (``model.safetensors`` +
            ``config.json``, whose ``kind`` names the task), that directory's
            self-describing ``model.safetensors``, a released file a task reads (the
            release's ``polypdiag.pth``, a classifier), or an ``hf-hub:OWNER/NAME`` name of
            one of them.
        task: a registered task's name (:func:`endofm.tasks.task_names`); when given, it
            must match what the checkpoint holds (else a ``ValueError``); ``None``: what it
            holds.
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

    if task is not None:
        get_task(task)  # an unknown name is an error listing the registered tasks
    path = resolve_weights(path)
    spec = infer_task(path, task)
    if task is not None and task != spec.name:
        raise ValueError(f"{path} is a {spec.name} model, not a {task} model")
    task_cls = spec.task_class()
    task_obj = task_cls(load_config(spec.config_schema()))
    if num_heads:  # released files do not store the head count
        task_obj.cfg.model.backbone.num_heads = num_heads
    model = task_obj.load_model(path).eval()
    cfg = task_obj.saved_config(path)
    shape = task_cls(cfg).model_input(model)
    return TaskModel(spec.name, model, shape.num_frames, shape.img_size, cfg, Path(path),
                     shape.frame_step, shape.kind)
