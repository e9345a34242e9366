"""Fine-tuned models over whole videos, window by window.

One predictor per task turns decoded uint8 windows into per-window (classification) or
per-frame (segmentation, detection) outputs; :func:`predict_video` collects them for one video
as plain arrays and dataclasses, and the ``predict`` command streams them into files.

- classification: windows of the model's ``T`` frames at the release's rate (32 frames at
  30 fps), adjacent by default; short side ``crop * 256 / 224`` then a centre crop (the task's
  evaluation), Kinetics mean/std → class probabilities per window. The video-level score is
  the maximum of the abnormal probability smoothed by a centred moving average over
  ``smooth`` windows; the video is called abnormal when that score reaches ``threshold``.
- segmentation: consecutive frames (``frame_step`` 1 by default), windows of ``T`` frames that
  do not overlap, so every predicted frame is seen once; frames resized to the model's square
  input (ImageNet mean/std, as the task) and the masks resized back to the decoded frame.
- detection: one clip per target frame (every ``frame_step``-th frame), its neighbours
  ``frame_stride`` apart as in training (clamped at the ends); boxes in decoded-frame pixels.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from endofm.data import VideoSource
from endofm.data.transforms import IMAGENET_MEAN, IMAGENET_STD, KINETICS_MEAN, KINETICS_STD
from endofm.inference.encoder import normalize_batch, open_job
from endofm.inference.stream import FrameSize, VideoJob, check_loader_settings, stream_windows
from endofm.inference.task_models import TaskModel, load_task_model
from endofm.inference.windows import Window, WindowSpec
from endofm.tasks.segmentation.data import read_input, to_model_input
from endofm.utils.device import autocast, resolve_device, resolve_precision


@dataclass(frozen=True)
class TargetPlan:
    """Detection windows: window ``k`` targets frame ``k * every`` (at position ``T // 2``)
    with neighbours ``step`` frames apart, clamped to the video."""

    video_frames: int
    fps: float
    num_frames: int
    step: int
    every: int

    def __len__(self) -> int:
        return -(-self.video_frames // self.every)

    def __getitem__(self, k: int) -> Window:
        if not 0 <= k < len(self):
            raise IndexError(f"window {k} out of range ({len(self)} windows)")
        offsets = (np.arange(self.num_frames) - self.num_frames // 2) * self.step
        raw = k * self.every + offsets
        frames = np.clip(raw, 0, self.video_frames - 1).astype(np.int64)
        return Window(k, frames, bool((raw != frames).any()), self.fps)


@dataclass
class ClassificationPrediction:
    """``probs`` float32 ``[windows, C]``; ``smoothed`` the abnormal probability after the
    moving average ``[windows]``; ``score = max(smoothed)``; ``abnormal = score >= threshold``."""

    windows: list[Window]
    probs: np.ndarray
    smoothed: np.ndarray
    score: float
    abnormal: bool
    threshold: float
    positive_class: int = 1


@dataclass
class SegmentationPrediction:
    """``frames`` int64 ``[F]`` predicted frame indices, ``masks`` uint8 ``[F, H, W]`` (1 =
    polyp, decoded-frame size), ``area`` float ``[F]`` the polyp fraction of each frame."""

    frames: np.ndarray
    times: np.ndarray
    masks: np.ndarray
    area: np.ndarray


@dataclass
class FrameBoxes:
    """Detections of one frame: ``boxes`` float32 ``[n, 4]`` xyxy pixels, ``scores`` ``[n]``,
    ``labels`` int64 ``[n]`` (1 = adenomatous, 2 = hyperplastic)."""

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


@dataclass
class WindowOutput:
    """The predictor's output for one batch of ``job``'s windows, with the uint8 frames it saw
    (``clips [b, T, 3, H, W]``) for overlays."""

    job: int
    windows: list[Window]
    clips: Tensor | None
    outputs: object
    errors: list[tuple[Window, str]]
    last: bool


class Predictor:
    """Shared machinery: device, precision, the decode stream."""

    mean: Sequence[float] = KINETICS_MEAN
    std: Sequence[float] = KINETICS_STD

    def __init__(self, task_model: TaskModel, frame_step: str | int | None = None,
                 stride: str | int | None = None, batch_size: int = 4, num_workers: int = 0,
                 device: str = "auto", precision: str = "auto", size: int | None = None,
                 folder_fps: float = 30.0) -> None:
        if size is not None and size < 1:
            raise ValueError(f"size must be >= 1 pixel, got {size}")
        check_loader_settings(batch_size, num_workers)
        self.task_model = task_model
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.model = task_model.model.eval().to(self.device)
        self.frame_step, self.stride, self.size = frame_step, stride, size
        self.batch_size, self.num_workers, self.folder_fps = batch_size, num_workers, folder_fps

    def frame_size(self) -> FrameSize:
        raise NotImplementedError

    def spec(self) -> WindowSpec:
        return WindowSpec(self.task_model.num_frames, self.frame_step, self.stride)

    def job(self, path: str | Path, key: str | None = None) -> VideoJob:
        return open_job(path, self.spec(), key, folder_fps=self.folder_fps)

    def forward(self, clips: Tensor) -> object:
        raise NotImplementedError

    def settings(self) -> dict[str, object]:
        return {"task": self.task_model.task, "num_frames": self.task_model.num_frames,
                "frame_step": self.frame_step, "stride": self.stride,
                "precision": self.precision, "size": self.frame_size().short_side}

    def run(self, jobs: Sequence[VideoJob]) -> Iterator[WindowOutput]:
        pin = self.device.type == "cuda"
        for batch in stream_windows(jobs, self.frame_size(), self.batch_size, self.num_workers,
                                    pin):
            with torch.inference_mode():
                out = self.forward(batch.clips) if batch.clips is not None else None
            yield WindowOutput(batch.job, batch.windows, batch.clips, out, batch.errors,
                               batch.last)

    def normalized(self, clips: Tensor) -> Tensor:
        return normalize_batch(clips.to(self.device, non_blocking=True), self.mean, self.std)


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
    def __init__(self, task_model: TaskModel, *args: object, threshold: float = 0.5,
                 smooth: int = 3, **kwargs: object) -> None:
        check_threshold(threshold)
        check_smoothing_width(smooth)
        super().__init__(task_model, *args, **kwargs)
        self.threshold, self.smooth = threshold, smooth
        data = task_model.settings.data
        self.positive = task_model.settings.model.positive_class
        self.mean, self.std = tuple(data.mean), tuple(data.std)

    def frame_size(self) -> FrameSize:
        data, crop = self.task_model.settings.data, self.task_model.img_size
        short = self.size or round(crop * data.test_short_side / data.crop_size)
        return FrameSize(crop, True, short, self.task_model.model.backbone.patch_size)

    def forward(self, clips: Tensor) -> np.ndarray:
        """uint8 ``[b, T, 3, H, W]`` → probabilities float32 ``[b, C]``."""
        with autocast(self.device, self.precision):
            logits = self.model(self.normalized(clips))
        return logits.float().softmax(-1).cpu().numpy()

    def settings(self) -> dict[str, object]:
        return super().settings() | {"threshold": self.threshold, "smooth": self.smooth}

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
    mean, std = IMAGENET_MEAN, IMAGENET_STD

    def spec(self) -> WindowSpec:
        step = self.frame_step if self.frame_step is not None else 1
        return WindowSpec(self.task_model.num_frames, step, self.stride)

    def frame_size(self) -> FrameSize:
        side = self.size or max(self.task_model.img_size, 256)
        return FrameSize(side, False, side, multiple=1, upscale=False)

    def forward(self, clips: Tensor) -> np.ndarray:
        """uint8 ``[b, T, 3, H, W]`` → masks uint8 ``[b, T, H, W]`` (1 = polyp)."""
        b, t, _, h, w = clips.shape
        s = self.task_model.img_size
        x = clips.to(self.device).flatten(0, 1)
        x = F.interpolate(x.float(), size=(s, s), mode="bilinear", antialias=True)
        x = x.round().clamp(0, 255).reshape(b, t, 3, s, s)
        with autocast(self.device, self.precision):
            logits = self.model(self.model_input(x))  # [b, C, T, s, s]
        logits = logits.float().transpose(1, 2).flatten(0, 1)
        logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
        return logits.argmax(1).reshape(b, t, h, w).to(torch.uint8).cpu().numpy()

    def model_input(self, x: Tensor) -> Tensor:
        """Resized frames ``[b, T, 3, s, s]`` (0–255) → ``[b, 3, T, s, s]``, normalised as the
        model was trained (``data.normalise``: ImageNet, or the release's BGR min–max)."""
        if self.task_model.settings.data.normalise != "release":
            return self.normalized(x)
        frames = x.to(torch.uint8)
        return torch.stack([to_model_input(read_input(c, "release"), "release")
                            for c in frames]).to(self.device)


class DetectionPredictor(Predictor):
    """``threshold`` ``None``: the model's operating threshold (chosen on validation when it
    was fine-tuned), else the release's 0.5."""

    def __init__(self, task_model: TaskModel, *args: object, threshold: float | None = None,
                 **kwargs: object) -> None:
        if threshold is not None:
            check_threshold(threshold)
        super().__init__(task_model, *args, **kwargs)
        chosen = getattr(task_model.model, "operating_threshold", None)
        self.threshold = threshold if threshold is not None else (chosen or 0.5)

    def job(self, path: str | Path, key: str | None = None) -> VideoJob:
        job = open_job(path, WindowSpec(self.task_model.num_frames), key,
                       folder_fps=self.folder_fps)
        every = 1 if self.frame_step is None else WindowSpec(1, self.frame_step).resolve(
            job.source.fps)[0]
        plan = TargetPlan(job.source.num_frames, job.source.fps, self.task_model.num_frames,
                          self.task_model.frame_stride, every)
        return VideoJob(job.key, job.source, plan)

    def frame_size(self) -> FrameSize:
        side = self.size or self.task_model.img_size
        return FrameSize(side, False, side, multiple=1, upscale=False)

    def forward(self, clips: Tensor) -> list[dict[str, np.ndarray]]:
        """uint8 ``[b, T, 3, H, W]`` → per clip ``{"boxes", "scores", "labels"}`` of its
        target frame (``T // 2``)."""
        x = clips.to(self.device).permute(0, 2, 1, 3, 4).float().div(255.0)
        with autocast(self.device, self.precision):
            outputs = self.model(list(x))
        return [{k: v.float().cpu().numpy() if k != "labels" else v.cpu().numpy()
                 for k, v in out.items()} for out in outputs]

    def settings(self) -> dict[str, object]:
        return super().settings() | {"threshold": self.threshold,
                                     "frame_stride": self.task_model.frame_stride}


def target_frame(window: Window) -> int:
    """The frame a detection window predicts (its middle frame, never clamped)."""
    return int(window.frames[len(window.frames) // 2])


PREDICTORS = {"classification": ClassificationPredictor,
              "segmentation": SegmentationPredictor, "detection": DetectionPredictor}


def make_predictor(task_model: TaskModel | str | Path, **options: object) -> Predictor:
    """The task's predictor for a loaded model or a checkpoint path."""
    if not isinstance(task_model, TaskModel):
        task_model = load_task_model(task_model)
    return PREDICTORS[task_model.task](task_model, **options)


def collect(predictor: Predictor, path: str | Path):
    """Run one video and gather its outputs as the task's prediction dataclass."""
    job = predictor.job(path)
    windows: list[Window] = []
    outputs: list = []
    for out in predictor.run([job]):
        if out.errors:
            from endofm.data import VideoError

            window, reason = out.errors[0]
            raise VideoError(path, f"window {window.index}: {reason}")
        windows += out.windows
        outputs.append(out.outputs)
    return job.source, windows, outputs


def predict_video(task_model: TaskModel | str | Path, path: str | Path, **options: object):
    """Predictions of a fine-tuned model over a whole video, without writing files.

    ``options`` go to the task's predictor (``frame_step``, ``stride``, ``batch_size``,
    ``num_workers``, ``device``, ``precision``, ``size``; ``threshold`` for classification and
    detection, ``smooth`` for classification). Returns a :class:`ClassificationPrediction`,
    :class:`SegmentationPrediction` or :class:`DetectionPrediction`.
    """
    predictor = make_predictor(task_model, **options)
    source, windows, outputs = collect(predictor, path)
    if isinstance(predictor, ClassificationPredictor):
        return predictor.summarize(windows, np.concatenate(outputs))
    if isinstance(predictor, SegmentationPredictor):
        return segmentation_result(source, windows, outputs)
    return detection_result(source, windows, outputs, predictor.threshold)


def segmentation_result(source: VideoSource, windows: list[Window],
                        outputs: list[np.ndarray]) -> SegmentationPrediction:
    """Per-frame masks from window masks; a frame seen by several windows keeps its first."""
    masks = np.concatenate(outputs)  # [windows, T, H, W]
    frames = np.stack([w.frames for w in windows])
    _, first = np.unique(frames.ravel(), return_index=True)
    flat = masks.reshape(-1, *masks.shape[2:])[first]
    order = frames.ravel()[first]
    return SegmentationPrediction(order, order / source.fps, flat,
                                  flat.reshape(len(flat), -1).mean(1))


def detection_result(source: VideoSource, windows: list[Window], outputs: list[list[dict]],
                     threshold: float) -> DetectionPrediction:
    flat = [o for batch in outputs for o in batch]
    frames = []
    for window, out in zip(windows, flat, strict=True):
        frame = target_frame(window)
        frames.append(FrameBoxes(frame, frame / source.fps, out["boxes"], out["scores"],
                                 out["labels"]))
    return DetectionPrediction(frames, threshold)
