"""The one windowed runner: windows of videos decoded in workers, put through a model.

A :class:`WindowRunner` owns what every command that runs a model over windows of video shares
(``extract``, ``predict`` of every task, ``attention``, the probes' clip features): the device,
the precision, the batch size, the decoding workers and ``torch.compile``. What it runs is a
:class:`WindowModel`, three steps per batch of decoded windows:

1. ``prepare(clips)``: uint8 ``[b, T, 3, H, W]`` on the device → the model's input, float32
   ``[b, 3, T, h, w]`` (resize, normalisation);
2. ``model_fn(x)``: **the model call**, the one seam: ``[B, 3, T, h, w]`` → the task's raw
   outputs (features, logits, detections). Anything with that signature can stand in for it,
   e.g. an ONNX Runtime session;
3. ``finish(raw, clips)``: raw outputs → what the command writes (numpy, in the video's terms).

With ``compile`` the model call is traced once for a fixed batch: the last, smaller batch is
padded to ``batch_size`` and the padding dropped from the outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from endofm.runner.compile import maybe_compile
from endofm.runner.precision import inference_module
from endofm.runner.stream import FrameMaker, VideoJob, check_loader_settings, stream_windows
from endofm.runner.windows import Window
from endofm.utils.device import autocast, resolve_device, resolve_precision


@dataclass(frozen=True)
class RunnerSettings:
    """``device``: ``auto | cpu | cuda | cuda:N``; ``precision``: ``auto | fp32 | bf16 | fp16``
    (``auto``: bf16 where the device has native bf16, else fp32); ``batch_size`` windows per
    model call; ``num_workers`` decoding processes (0 decodes in this one); ``compile``: the
    model call through ``torch.compile`` (inductor, weights frozen)."""

    device: str = "auto"
    precision: str = "auto"
    batch_size: int = 8
    num_workers: int = 0
    compile: bool = False

    def __post_init__(self) -> None:
        check_loader_settings(self.batch_size, self.num_workers)


class WindowModel(Protocol):
    """What a :class:`WindowRunner` runs (see the module docstring)."""

    frames: FrameMaker

    def prepare(self, clips: Tensor) -> Tensor: ...

    def model_fn(self, x: Tensor) -> Any: ...

    def finish(self, raw: Any, clips: Tensor) -> Any: ...


@dataclass
class WindowOutput:
    """The outputs of one batch of consecutive windows of ``jobs[job]``: ``outputs`` for
    ``windows`` (``None`` when none decoded), the uint8 frames they came from (``clips``
    ``[b, T, 3, H, W]``, on the CPU), and ``errors``: ``(window, reason)`` for the windows that
    could not be decoded. ``last``: the video's last batch."""

    job: int
    windows: list[Window]
    clips: Tensor | None
    outputs: Any
    errors: list[tuple[Window, str]]
    last: bool


class WindowRunner:
    """Device, precision, batching, decoding workers and compile for windowed inference."""

    def __init__(self, settings: RunnerSettings) -> None:
        self.options = settings
        self.device = resolve_device(settings.device)
        self.precision = resolve_precision(settings.precision, self.device)

    @property
    def batch_size(self) -> int:
        return self.options.batch_size

    def place(self, module: nn.Module) -> nn.Module:
        """``module`` in eval mode on the runner's device."""
        return module.eval().to(self.device)

    def model_call(self, module: nn.Module) -> Callable[[Tensor], Any]:
        """``module`` (placed) as the runner calls it: in bf16 on a CPU its bf16 copy
        (:func:`endofm.runner.precision.inference_module`: weights cast once, ``module``
        itself untouched), through ``torch.compile`` when asked."""
        compile = self.options.compile
        module = inference_module(module, self.device, self.precision, pack=not compile)
        return maybe_compile(module, compile, self.device, self.precision)

    def call(self, model_fn: Callable[[Tensor], Any], x: Tensor) -> Any:
        """``model_fn(x)`` under the runner's precision; with compile the batch is padded to
        ``batch_size`` (fixed shapes, no recompilation) and the result cut back (tensor
        outputs)."""
        b = x.shape[0]
        pad = self.options.compile and b < self.batch_size
        if pad:
            x = torch.cat([x, x[-1:].expand(self.batch_size - b, *x.shape[1:])])
        with autocast(self.device, self.precision):
            out = model_fn(x)
        return out[:b] if pad else out

    @torch.inference_mode()
    def forward(self, model: WindowModel, clips: Tensor) -> Any:
        """One batch of uint8 ``[b, T, 3, H, W]`` clips through ``model``'s three steps."""
        x = model.prepare(clips.to(self.device, non_blocking=True))
        return model.finish(self.call(model.model_fn, x), clips)

    def run(self, model: WindowModel, jobs: Sequence[VideoJob]) -> Iterator[WindowOutput]:
        """``model``'s outputs for every window of ``jobs``, batch by batch, in order."""
        pin = self.device.type == "cuda"
        for batch in stream_windows(jobs, model.frames, self.batch_size,
                                    self.options.num_workers, pin):
            out = self.forward(model, batch.clips) if batch.clips is not None else None
            yield WindowOutput(batch.job, batch.windows, batch.clips, out, batch.errors,
                               batch.last)

    def settings(self) -> dict[str, object]:
        """What changes the numbers (``precision``), for the output-folder guard."""
        return {"precision": self.precision}

    def runtime(self) -> dict[str, object]:
        """What only changes how it runs (recorded, not compared)."""
        return {"device": f"{self.options.device} ({self.device})",
                "batch_size": self.batch_size, "workers": self.options.num_workers,
                "compile": self.options.compile}
