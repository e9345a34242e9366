"""Fine-tuned models over whole videos, window by window, on the one windowed runner.

One predictor per task turns decoded uint8 windows into per-window (classification) or
per-frame (segmentation, detection) outputs; :func:`predict_video` collects them for one video
as plain arrays and dataclasses, and the ``predict`` command streams them into files. Masks and
boxes are in the video's own pixels, whatever size the model saw.

- classification: windows of the model's ``T`` frames at the release's rate (32 frames at
  30 fps), adjacent by default; short side ``crop * 256 / 224`` (``size``) then a centre crop
  (the task's evaluation), the model's mean/std → class probabilities per window. The
  video-level score is the maximum of the positive class's probability smoothed by a centred
  moving average over ``smooth`` windows; the video gets the positive class when that score
  reaches ``threshold``.
- segmentation: windows of ``T`` frames ``frame_step`` apart (default 1: consecutive),
  adjacent (every predicted frame seen once); frames decoded at the video's size, resized to
  the model's square input on the device (ImageNet mean/std, as the task) and the logits
  resized back to the video's size.
- detection: one clip per predicted frame (every ``stride``-th frame, default 1), centred on
  it, its neighbours ``frame_step`` apart (default: the model's training step), clamped at the
  ends; the detector sees frames with the short side at most its ``min_size`` and its boxes
  are scaled back to the video's pixels.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from endofm.data import VideoError, VideoSource
from endofm.data.transforms import IMAGENET_MEAN, IMAGENET_STD, normalize_batch
from endofm.inference.task_models import TaskModel, load_task_model
from endofm.inference.windowed import DEFAULT_FOLDER_FPS, Windowed
from endofm.models.checkpoint import MODEL_CONFIG_NAME, weights_metadata
from endofm.runner import (
    FrameSize,
    NativeFrames,
    RunnerSettings,
    Window,
    WindowRunner,
    WindowSpec,
    target_frame,
)
from endofm.tasks.registry import get_task, load_object
from endofm.tasks.segmentation.data import read_input, to_model_input

# Class names of checkpoints that do not record theirs (the public datasets' classes).
DEFAULT_CLASS_NAMES = {"classification": ["normal", "abnormal"],
                       "segmentation": ["background", "polyp"],
                       "detection": ["adenomatous", "hyperplastic"]}


def class_names(task_model: TaskModel) -> list[str]:
    """The model's class names: what its ``config.json`` records (``classes``:
    ``[{"index", "id", "name"}]`` in output order, or a plain ``class_names`` list;
    classification and segmentation: one per output channel, background first for
    segmentation; detection: one per label 1..C), else the defaults of the public datasets
    when the count matches, else ``class_<i>``."""
    meta = saved_config(task_model)
    if meta.get("classes"):
        return [str(r["name"]) for r in sorted(meta["classes"], key=lambda r: int(r["index"]))]
    if meta.get("class_names"):
        return [str(n) for n in meta["class_names"]]
    count = num_classes(task_model)
    default = DEFAULT_CLASS_NAMES[task_model.task]
    first = 1 if task_model.task == "detection" else 0
    return default if len(default) == count else [f"class_{i}" for i in
                                                  range(first, first + count)]


def saved_config(task_model: TaskModel) -> dict[str, Any]:
    """The ``config.json`` of a model directory, or the same from a self-describing weights
    file's header (``{}`` for a released file)."""
    if task_model.path.is_file():
        return weights_metadata(task_model.path) or {}
    config = task_model.path / MODEL_CONFIG_NAME
    return json.loads(config.read_text()) if config.is_file() else {}


def num_classes(task_model: TaskModel) -> int:
    """Output classes of the model (detection: foreground labels): its config's count, else the
    classifier's head (a count sized from the data is not in the config)."""
    count = task_model.settings.model.num_classes
    return int(count if count is not None else task_model.model.num_classes)


@dataclass
class ClassificationPrediction:
    """``probs`` float32 ``[windows, C]``; ``smoothed`` the positive class's probability after
    the moving average ``[windows]``; ``score = max(smoothed)``; ``abnormal = score >=
    threshold`` (the video is called the positive class)."""

    windows: list[Window]
    probs: np.ndarray
    smoothed: np.ndarray
    score: float
    abnormal: bool
    threshold: float
    positive_class: int = 1


@dataclass
class SegmentationPrediction:
    """``frames`` int64 ``[F]`` predicted frame indices, ``masks`` uint8 ``[F, H, W]`` (class
    index per pixel; the video's own size), ``area`` float ``[F]`` the fraction of each frame
    that is not the background class (``config.json`` ``background``, default 0)."""

    frames: np.ndarray
    times: np.ndarray
    masks: np.ndarray
    area: np.ndarray


@dataclass
class FrameBoxes:
    """Detections of one frame: ``boxes`` float32 ``[n, 4]`` xyxy in the video's pixels,
    ``scores`` ``[n]``, ``labels`` int64 ``[n]`` (1..C, named by :func:`class_names`)."""

    frame: int
    time_s: float
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


@dataclass
class DetectionPrediction:
    frames: list[FrameBoxes] = field(default_factory=list)
    threshold: float = 0.5

    def counts(self) -> np.ndarray:
        """Detections scoring at least ``threshold`` per frame, ``[F]``."""
        return np.array([int((f.scores >= self.threshold).sum()) for f in self.frames])


class Predictor(Windowed):
    """What every task's predictor shares: the task model on the runner's device, the window
    plan, and refusing what means nothing for the task (``refused``: option → why)."""

    refused: dict[str, str] = {}
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD

    def __init__(self, task_model: TaskModel, frame_step: str | int | None = None,
                 stride: str | int | None = None, batch_size: int = 4, num_workers: int = 0,
                 device: str = "auto", precision: str = "auto",
                 folder_fps: float = DEFAULT_FOLDER_FPS, compile: bool = False) -> None:
        runner = WindowRunner(RunnerSettings(device, precision, batch_size, num_workers,
                                             compile))
        self.task_model = task_model
        self.frame_step, self.stride = frame_step, stride
        super().__init__(runner, self.window_spec(), folder_fps)
        self.model = runner.place(task_model.model)
        self.call_model = runner.model_call(self.model)
        self.class_names = class_names(task_model)

    def window_spec(self) -> WindowSpec:
        return WindowSpec(self.task_model.num_frames, self.frame_step, self.stride)

    def model_fn(self, x: Tensor) -> Any:
        """The model call: float32 ``[B, 3, T, h, w]`` → the task's raw outputs."""
        return self.call_model(x)

    def settings(self) -> dict[str, object]:
        return {"task": self.task_model.task, **super().settings(),
                "classes": self.class_names}

    def normalized(self, clips: Tensor) -> Tensor:
        return normalize_batch(clips, self.mean, self.std)


def check_threshold(threshold: float) -> None:
    """A decision threshold on a probability or score: in [0, 1]."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")


def check_smoothing_width(width: int) -> None:
    """The moving average's width (``smooth``): a positive odd number of windows."""
    if width < 1 or width % 2 == 0:
        raise ValueError(f"smooth (the smoothing width, in windows) must be a positive odd "
                         f"number, got {width}")


class ClassificationPredictor(Predictor):
    """Per-window class probabilities; ``size``: the short side frames are decoded at
    (default ``crop * test_short_side / crop_size``, the task's evaluation)."""

    def __init__(self, task_model: TaskModel, *args: Any, threshold: float = 0.5,
                 smooth: int = 3, size: int | None = None, **kwargs: Any) -> None:
        check_threshold(threshold)
        check_smoothing_width(smooth)
        if size is not None and size < 1:
            raise ValueError(f"size must be >= 1 pixel, got {size}")
        data, crop = task_model.settings.data, task_model.img_size
        self.frames = FrameSize(crop, True, size or round(crop * data.test_short_side /
                                                         data.crop_size),
                                task_model.model.backbone.patch_size)
        super().__init__(task_model, *args, **kwargs)
        self.threshold, self.smooth = threshold, smooth
        self.positive = task_model.settings.model.positive_class
        self.mean, self.std = tuple(data.mean), tuple(data.std)
        self.multi_label = bool(saved_config(task_model).get("multi_label", False))

    def prepare(self, clips: Tensor) -> Tensor:
        return self.normalized(clips)

    def finish(self, raw: Tensor, clips: Tensor) -> np.ndarray:
        """Logits ``[b, C]`` → probabilities float32 ``[b, C]`` (sigmoids for a multi-label
        head)."""
        logits = raw.float()
        return (logits.sigmoid() if self.multi_label else logits.softmax(-1)).cpu().numpy()

    def settings(self) -> dict[str, object]:
        return super().settings() | {"threshold": self.threshold, "smooth": self.smooth,
                                     "positive_class": self.class_names[self.positive]}

    def summarize(self, windows: list[Window], probs: np.ndarray) -> ClassificationPrediction:
        smoothed = moving_average(probs[:, self.positive], self.smooth)
        score = float(smoothed.max()) if len(smoothed) else 0.0
        return ClassificationPrediction(windows, probs, smoothed, score, score >= self.threshold,
                                        self.threshold, self.positive)


def moving_average(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average of ``[N]`` over an odd ``width`` of samples (fewer at the ends)."""
    check_smoothing_width(width)
    x = np.asarray(x, dtype=np.float64)
    half = width // 2
    sums = np.concatenate([[0.0], np.cumsum(x)])
    lo = np.clip(np.arange(len(x)) - half, 0, len(x))
    hi = np.clip(np.arange(len(x)) + half + 1, 0, len(x))
    return (sums[hi] - sums[lo]) / np.maximum(hi - lo, 1)


class SegmentationPredictor(Predictor):
    """Per-frame masks in the video's own size."""

    frames = NativeFrames()
    refused = {"size": "frames are decoded at the video's own size and resized to the "
                       "model's input, and masks come out at the video's size",
               "threshold": "each pixel gets its most probable class",
               "smooth": "it smooths classification windows"}

    def __init__(self, task_model: TaskModel, *args: Any, **kwargs: Any) -> None:
        super().__init__(task_model, *args, **kwargs)
        # the background class (config.json "background"; None: every class is foreground)
        self.background: int | None = saved_config(task_model).get("background", 0)

    def foreground(self) -> list[int]:
        """The classes whose area is reported (all but the background)."""
        return [c for c in range(len(self.class_names)) if c != self.background]

    def window_spec(self) -> WindowSpec:
        step = self.frame_step if self.frame_step is not None else 1
        return WindowSpec(self.task_model.num_frames, step, self.stride)

    def input_size(self, height: int, width: int) -> dict[str, str]:
        s = self.task_model.img_size
        return {"model_input": f"{s}x{s}"}

    def prepare(self, clips: Tensor) -> Tensor:
        """uint8 ``[b, T, 3, H, W]`` → the model's square input ``[b, 3, T, s, s]``."""
        b, t = clips.shape[:2]
        s = self.task_model.img_size
        x = F.interpolate(clips.flatten(0, 1).float(), size=(s, s), mode="bilinear",
                          antialias=True)
        return self.model_input(x.round().clamp(0, 255).reshape(b, t, 3, s, s))

    def finish(self, raw: Tensor, clips: Tensor) -> np.ndarray:
        """Logits ``[b, C, T, s, s]`` → masks uint8 ``[b, T, H, W]`` at the frames' size
        (resized window by window, so memory holds one window's logits at full size)."""
        h, w = clips.shape[-2:]
        masks = []
        for logits in raw.float():  # [C, T, s, s]
            up = F.interpolate(logits.transpose(0, 1), size=(h, w), mode="bilinear",
                               align_corners=False)
            masks.append(up.argmax(1).to(torch.uint8).cpu())
        return torch.stack(masks).numpy()

    def model_input(self, x: Tensor) -> Tensor:
        """Resized frames ``[b, T, 3, s, s]`` (0–255) → ``[b, 3, T, s, s]``, normalised as the
        model was trained (``data.normalization``: ImageNet, or the release's BGR min–max)."""
        if self.task_model.settings.data.normalization != "release":
            return self.normalized(x)
        frames = x.to(torch.uint8)
        return torch.stack([to_model_input(read_input(c, "release"), "release")
                            for c in frames]).to(x.device)


class DetectionPredictor(Predictor):
    """Boxes of every ``stride``-th frame in the video's pixels. ``threshold`` ``None``: the
    model's operating threshold (chosen on validation when it was fine-tuned), else the
    release's 0.5. ``frame_step`` ``None``: the step between a clip's frames the model was
    trained with."""

    frames = NativeFrames()
    mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    refused = {"size": "frames are decoded at the video's own size and resized to the "
                       "detector's input, and boxes come out in the video's pixels",
               "smooth": "it smooths classification windows"}

    def __init__(self, task_model: TaskModel, *args: Any, threshold: float | None = None,
                 **kwargs: Any) -> None:
        if threshold is not None:
            check_threshold(threshold)
        super().__init__(task_model, *args, **kwargs)
        chosen = getattr(task_model.model, "operating_threshold", None)
        self.threshold = (threshold if threshold is not None
                          else chosen if chosen is not None else 0.5)

    def window_spec(self) -> WindowSpec:
        step = self.frame_step if self.frame_step is not None else self.task_model.frame_step
        return WindowSpec(self.task_model.num_frames, step, self.stride, anchor="centre")

    def input_side(self, height: int, width: int) -> tuple[int, int]:
        """The frames' size fed to the detector: short side at most its ``min_size``."""
        side = min(self.task_model.img_size, height, width)
        return (side, int(side * width / height)) if height <= width else \
            (int(side * height / width), side)

    def input_size(self, height: int, width: int) -> dict[str, str]:
        h, w = self.input_side(height, width)
        return {"model_input": f"{w}x{h}"}

    def prepare(self, clips: Tensor) -> Tensor:
        """uint8 ``[b, T, 3, H, W]`` → ``[b, 3, T, h, w]`` in [0, 1], short side reduced to
        the detector's ``min_size``."""
        b, t, _, h, w = clips.shape
        size = self.input_side(h, w)
        x = clips.flatten(0, 1).float()
        if size != (h, w):
            x = F.interpolate(x, size=size, mode="bilinear", antialias=True).round()
        return x.clamp(0, 255).div(255.0).reshape(b, t, 3, *size).transpose(1, 2)

    def model_fn(self, x: Tensor) -> list[dict[str, Tensor]]:
        """The model call: ``[B, 3, T, h, w]`` → per clip ``{"boxes", "scores", "labels"}``
        of its middle frame, in the input's pixels."""
        return self.call_model(list(x))

    def finish(self, raw: list[dict[str, Tensor]], clips: Tensor) -> list[dict[str, np.ndarray]]:
        """Boxes scaled from the detector's input to the frames' own pixels."""
        h, w = clips.shape[-2:]
        ih, iw = self.input_side(h, w)
        scale = torch.tensor([w / iw, h / ih, w / iw, h / ih])
        return [{"boxes": (out["boxes"].float().cpu() * scale).numpy(),
                 "scores": out["scores"].float().cpu().numpy(),
                 "labels": out["labels"].cpu().numpy()} for out in raw]

    def settings(self) -> dict[str, object]:
        return super().settings() | {"threshold": self.threshold}


def make_predictor(task_model: TaskModel | str | Path, **options: Any) -> Predictor:
    """The task's registered predictor for a loaded model or a checkpoint path. An option the
    task has no use for (given, not ``None``) is refused in one line saying why."""
    if not isinstance(task_model, TaskModel):
        task_model = load_task_model(task_model)
    spec = get_task(task_model.task)
    if spec.predictor is None:  # a task with its own predict command (phase: window features)
        raise ValueError(f"{task_model.path}: a {spec.name} model has no windowed predictor; "
                         f"use `endofm predict {spec.name}`")
    cls = load_object(spec.predictor)
    for name, value in options.items():
        if value is not None and name in cls.refused:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} means nothing for {task_model.task}: {cls.refused[name]}; "
                             "leave it out")
    return cls(task_model, **{k: v for k, v in options.items() if v is not None})


def collect(predictor: Predictor, path: str | Path):
    """Run one video and gather its outputs as the task's prediction dataclass."""
    job = predictor.job(path)
    windows: list[Window] = []
    outputs: list = []
    for out in predictor.run([job]):
        if out.errors:
            window, reason = out.errors[0]
            raise VideoError(path, f"window {window.index}: {reason}")
        windows += out.windows
        outputs.append(out.outputs)
    return job.source, windows, outputs


def predict_video(
    task_model: TaskModel | str | Path, path: str | Path, **options: object
) -> ClassificationPrediction | SegmentationPrediction | DetectionPrediction:
    """Predictions of a fine-tuned model over a whole video, without writing files.

    Args:
        task_model: a model from :func:`endofm.load_task_model`, or a checkpoint it reads.
        path: a video file or a folder of frames.
        **options: the task's predictor settings: ``frame_step``, ``stride``, ``batch_size``,
            ``num_workers``, ``device``, ``precision``, ``folder_fps``, ``compile``; ``size``
            and ``smooth`` for classification, ``threshold`` for classification and
            detection. One the task has no use for is a ``ValueError`` saying why.

    Returns:
        The prediction for the model's task, a :class:`ClassificationPrediction`
            (``probs`` ``[windows, C]``, ``smoothed`` ``[windows]``, the video's ``score``
            and call); a
            :class:`SegmentationPrediction` (``frames`` ``[F]``, ``masks`` uint8 ``[F, H, W]``
            in the video's pixels, ``area`` ``[F]``); or a :class:`DetectionPrediction` (one
            :class:`FrameBoxes` per window's target frame: ``boxes`` ``[n, 4]`` xyxy in the
            video's pixels, ``scores`` ``[n]``, ``labels`` ``[n]``).
    """
    predictor = make_predictor(task_model, **options)
    source, windows, outputs = collect(predictor, path)
    if isinstance(predictor, ClassificationPredictor):
        return predictor.summarize(windows, np.concatenate(outputs))
    if isinstance(predictor, SegmentationPredictor):
        return segmentation_result(source, windows, outputs, predictor.background)
    return detection_result(source, windows, outputs, predictor.threshold)


def segmentation_result(source: VideoSource, windows: list[Window], outputs: list[np.ndarray],
                        background: int | None = 0) -> SegmentationPrediction:
    """Per-frame masks from window masks; a frame seen by several windows keeps its first."""
    masks = np.concatenate(outputs)  # [windows, T, H, W]
    frames = np.stack([w.frames for w in windows])
    _, first = np.unique(frames.ravel(), return_index=True)
    flat = masks.reshape(-1, *masks.shape[2:])[first]
    order = frames.ravel()[first]
    return SegmentationPrediction(order, order / source.fps, flat,
                                  (flat != background).reshape(len(flat), -1).mean(1))


def detection_result(source: VideoSource, windows: list[Window], outputs: list[list[dict]],
                     threshold: float) -> DetectionPrediction:
    flat = [o for batch in outputs for o in batch]
    frames = []
    for window, out in zip(windows, flat, strict=True):
        frame = target_frame(window)
        frames.append(FrameBoxes(frame, frame / source.fps, out["boxes"], out["scores"],
                                 out["labels"]))
    return DetectionPrediction(frames, threshold)
