"""Per-task decisions on one causal window, for ``endofm stream``.

A task plugs into live inference with a :class:`LiveTask`: how many frames a window has and
how far apart (in source frames), which of them the decision is about, how a decoded frame is
prepared, how a window becomes a JSON-ready prediction and how that prediction is drawn. Its
factory is named by the task's registration (:class:`endofm.tasks.TaskSpec`'s ``live``).

Classification, segmentation and detection are built on their predictors
(:mod:`endofm.inference.predict`), so a live decision is the model call ``endofm predict``
makes on the same window.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor

from endofm.data.transforms import to_clip
from endofm.inference.predict import Predictor, make_predictor
from endofm.inference.report import draw_boxes, tint
from endofm.inference.task_models import TaskModel
from endofm.runner import FrameSize, NativeFrames
from endofm.tasks.registry import get_task, load_object, task_specs


@dataclass
class Decision:
    """A window's ``prediction`` (JSON-ready) and what drawing it needs (``overlay``)."""

    prediction: dict[str, Any]
    overlay: Any = None


class LiveTask(ABC):
    """How a task decides on a causal window: ``num_frames`` frames ``frame_step`` source
    frames apart, the newest last; the decision is about window frame ``target``."""

    name: str  # the task's name
    num_frames: int
    frame_step: int
    target: int
    short_side: int | None = None  # frames are downscaled to this short side while decoding

    def wants(self, index: int) -> bool:
        """Whether source frame ``index`` gets a decision (default: every frame offered)."""
        return True

    @abstractmethod
    def prepare(self, image: np.ndarray) -> Tensor:
        """A decoded RGB frame ``uint8 [H, W, 3]`` → ``uint8 [3, h, w]`` as windows hold it."""

    @abstractmethod
    def decide(self, window: Tensor) -> Decision:
        """A window ``uint8 [T, 3, h, w]`` → its decision."""

    def draw(self, frame: np.ndarray, decision: Decision) -> np.ndarray:
        """A prepared frame ``uint8 [h, w, 3]`` with ``decision`` drawn on it."""
        return frame


LiveFactory = Callable[..., LiveTask]


def live_task(task_model: TaskModel, fps: float, class_names: Sequence[str],
              **options: Any) -> LiveTask:
    """The :class:`LiveTask` of ``task_model``'s task: its registration's ``live`` factory,
    ``factory(task_model, fps, class_names, **predictor_options)``."""
    spec = get_task(task_model.task)
    if spec.live is None:
        runs = ", ".join(s.name for s in task_specs() if s.live is not None)
        raise ValueError(f"{task_model.path}: live inference has no {task_model.task} task "
                         f"(it runs {runs})")
    factory: LiveFactory = load_object(spec.live)
    return factory(task_model, fps, class_names, **options)


def shape_frame(image: np.ndarray, size: FrameSize | NativeFrames) -> Tensor:
    """``uint8 [H, W, 3]`` → ``uint8 [3, h, w]`` as the predictor's frame maker shapes a decoded
    clip: :class:`NativeFrames` keeps the frame, :class:`FrameSize` resizes and crops it
    (:meth:`FrameSize.shape`)."""
    clip = to_clip(image[None])
    return clip[0] if isinstance(size, NativeFrames) else size.shape(clip)[0]


class PredictorTask(LiveTask):
    """A live task on a task's :class:`~endofm.inference.predict.Predictor`."""

    def __init__(self, predictor: Predictor, fps: float, class_names: Sequence[str]) -> None:
        self.predictor, self.class_names = predictor, list(class_names)
        self.name = predictor.task_model.task
        self.size = predictor.frames
        self.short_side = (None if isinstance(self.size, NativeFrames)
                           else self.size.short_side or self.size.size)
        self.num_frames = predictor.task_model.num_frames
        self.frame_step = predictor.spec.resolve(fps)[0]
        self.target = self.num_frames - 1

    def prepare(self, image: np.ndarray) -> Tensor:
        return shape_frame(image, self.size)

    def outputs(self, window: Tensor) -> Any:
        """The predictor's outputs for the one window (the runner's three steps)."""
        return self.predictor.runner.forward(self.predictor, window[None])


class ClassificationLive(PredictorTask):
    """Class probabilities of the window; ``positive``: the positive class's probability
    reaches the threshold (no smoothing: a live decision sees no later window)."""

    def decide(self, window: Tensor) -> Decision:
        probs = self.outputs(window)[0]
        pos = self.predictor.positive
        return Decision({"class": self.class_names[int(probs.argmax())],
                         "probabilities": {n: round(float(p), 6)
                                           for n, p in zip(self.class_names, probs, strict=True)},
                         "score": round(float(probs[pos]), 6),
                         "positive": bool(probs[pos] >= self.predictor.threshold)})

    def draw(self, frame: np.ndarray, decision: Decision) -> np.ndarray:
        p = decision.prediction
        colour = (255, 60, 60) if p["positive"] else (60, 220, 60)
        out = frame.copy()
        out[:max(2, frame.shape[0] // 20), :max(1, round(p["score"] * frame.shape[1]))] = colour
        return out


class SegmentationLive(PredictorTask):
    """The mask of the newest frame: its area (fraction of the frame) and bounding box (in the
    frame's own pixels, ``[x1, y1, x2, y2]``, ``None`` when empty)."""

    def decide(self, window: Tensor) -> Decision:
        mask = self.outputs(window)[0][-1]  # [h, w] of the newest frame
        ys, xs = np.nonzero(mask)
        box = ([int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
               if len(xs) else None)
        return Decision({"area": round(float(mask.mean()), 6), "box": box,
                         "frame_size": list(mask.shape)}, mask)

    def draw(self, frame: np.ndarray, decision: Decision) -> np.ndarray:
        return tint(frame, decision.overlay)


class DetectionLive(PredictorTask):
    """Boxes of the window's target frame (its middle frame, as the detector was trained):
    those scoring at least the threshold, in the frame's own pixels."""

    def __init__(self, predictor: Predictor, fps: float, class_names: Sequence[str]) -> None:
        super().__init__(predictor, fps, class_names)
        self.target = self.num_frames // 2

    def decide(self, window: Tensor) -> Decision:
        out = self.outputs(window)[0]
        keep = out["scores"] >= self.predictor.threshold
        names = [self.class_names[int(c) - 1] if 0 < c <= len(self.class_names) else str(c)
                 for c in out["labels"][keep]]
        return Decision({"boxes": np.round(out["boxes"][keep], 2).tolist(),
                         "scores": np.round(out["scores"][keep], 6).tolist(), "labels": names,
                         "frame_size": [int(window.shape[-2]), int(window.shape[-1])]}, out)

    def draw(self, frame: np.ndarray, decision: Decision) -> np.ndarray:
        out = decision.overlay
        return draw_boxes(frame, out["boxes"], out["scores"], out["labels"],
                          self.predictor.threshold)


def predictor_factory(cls: type[PredictorTask]) -> LiveFactory:
    """A factory building ``cls`` on the task's predictor (``options`` go to the predictor:
    device, precision, threshold, frame_step, size)."""

    def build(task_model: TaskModel, fps: float, class_names: Sequence[str],
              **options: Any) -> LiveTask:
        return cls(make_predictor(task_model, **options), fps, class_names)

    return build


# the ``live`` factories the built-in tasks register
classification_live = predictor_factory(ClassificationLive)
segmentation_live = predictor_factory(SegmentationLive)
detection_live = predictor_factory(DetectionLive)
