"""The phase task in ``endofm stream``: the causal temporal model fed one window feature per
row, as it was trained (``features.rate`` windows per second).

A phase model decides only on the windows its training extracted: window ``k`` holds the
frames ``k·S + j·R`` (``j < T``; ``S`` the stride, ``R`` the frame step, in source frames), so
its decision is made when frame ``k·S + (T-1)·R`` arrives. Each decision runs the backbone on
that window (:attr:`PhaseStream.encoder`) and steps the causal model
(:meth:`PhaseStream.step`): the phase shown is computed from windows ``0..k`` only. An offline
model (``model.causal=false``) looks at future windows and is refused. A window dropped because
the model was busy (counted in ``summary.json``) is a row the temporal model never sees.

On ONNX Runtime (an ``endofm export`` of the phase model) the backbone graph makes each
window's feature and the temporal graph runs over the features so far, the same steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from torch import Tensor

from endofm.deploy.live_tasks import Decision, LiveTask, shape_frame
from endofm.deploy.phase import OnnxPhaseModel
from endofm.inference.phase_predict import PhaseStream
from endofm.inference.task_models import TaskModel
from endofm.models.checkpoint import read_state_meta
from endofm.tasks.phase.task import KIND


class PhaseLive(LiveTask):
    """Live phase decisions of a causal phase model (module docstring)."""

    name = "phase"

    def __init__(self, stream: PhaseStream, fps: float) -> None:
        self.stream = stream
        encoder = stream.encoder
        self.encoder, self.size = encoder, encoder.frame_size
        self.short_side = self.size.short_side or self.size.size
        self.num_frames = encoder.spec.num_frames
        self.frame_step, self.stride = encoder.spec.resolve(fps)
        self.target = self.num_frames - 1
        self.colours = colormaps["tab10" if len(stream.phases) <= 10 else "tab20"]

    def wants(self, index: int) -> bool:
        """Whether frame ``index`` completes one of the training's windows."""
        first = index - (self.num_frames - 1) * self.frame_step
        return first >= 0 and first % self.stride == 0

    def prepare(self, image: np.ndarray) -> Tensor:
        return shape_frame(image, self.size)

    def decide(self, window: Tensor) -> Decision:
        """The window's feature → one more row of the causal model: the phase shown now, the
        probability of every phase (and of every tool when the model has the tool head)."""
        feature = self.encoder.runner.forward(self.encoder, window[None])[0]
        shown = self.stream.step(feature)
        prediction: dict[str, Any] = {
            "phase": shown.phase,
            "probabilities": {p: round(float(v), 6)
                              for p, v in zip(self.stream.phases, shown.probs, strict=True)}}
        if shown.tools is not None:
            prediction["tools"] = {t: round(float(v), 6) for t, v in
                                   zip(self.stream.meta["tools"], shown.tools, strict=True)}
        return Decision(prediction, shown.index)

    def draw(self, frame: np.ndarray, decision: Decision) -> np.ndarray:
        """A bar along the top in the phase's colour (the timeline's colours)."""
        out = frame.copy()
        colour = self.colours(decision.overlay % self.colours.N)[:3]
        out[:max(2, frame.shape[0] // 20)] = [round(255 * c) for c in colour]
        return out


def build_phase_live(task_model: TaskModel, fps: float, class_names: Sequence[str],
                     device: str = "auto", precision: str = "auto", **_: Any) -> PhaseLive:
    """The live task of a phase :class:`TaskModel` (an offline model is refused): a saved
    model on PyTorch, or an export on ONNX Runtime (its temporal graph and the backbone graph
    beside it)."""
    model = task_model.model
    if isinstance(model, OnnxPhaseModel):
        stream = PhaseStream(task_model.path, "cpu", model, model.settings, "fp32",
                             model.backbone() if model.causal else None)
    else:
        stream = PhaseStream(task_model.path, device, model,
                             read_state_meta(task_model.path, KIND), precision)
    return PhaseLive(stream, fps)

