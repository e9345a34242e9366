"""Live inference (``endofm stream``): decisions on causal windows of a running source.

One thread decodes (and paces a file at its frame rate), another runs the model; between
them a one-slot mailbox holds the newest window. When the model is slower than the feed, a
window still waiting when the next one arrives is replaced (counted as dropped), so a
decision is never about a stale frame and latency stays bounded by about one model call.

The window of frame ``i`` holds frames ``i - (T-1-k)*R`` for ``k < T`` (``R`` the model's frame
step in source frames), clamped to the first frame while fewer have arrived (``partial``):
nothing after frame ``i`` is ever used.

Written to the output folder: ``decisions.jsonl`` (one line per decision, as it is made),
``summary.json`` (latency percentiles, decisions per second, frames dropped) and, with
``overlay``, ``overlay.mp4`` (every decoded frame with the newest decision drawn on it).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
from torch import Tensor

from endofm.deploy.live_source import LiveSource, SourceFrame
from endofm.deploy.live_tasks import Decision, LiveTask, live_task
from endofm.deploy.model import task_class_names
from endofm.inference.pages import OverlayVideo
from endofm.inference.task_models import TaskModel, load_task_model
from endofm.utils.io import atomic_write_json

log = logging.getLogger(__name__)

DECISIONS_NAME, SUMMARY_NAME, OVERLAY_NAME = "decisions.jsonl", "summary.json", "overlay.mp4"


@dataclass
class PendingWindow:
    """A window waiting for the model: its frames ``uint8 [T, 3, h, w]``, the newest frame
    (index, time, arrival), the frame the decision is about and whether it was clamped."""

    frames: Tensor
    newest: SourceFrame
    target_index: int
    target_time_s: float
    partial: bool


class Mailbox:
    """One slot: ``put`` replaces what is waiting (and says so), ``take`` waits for the next
    item, ``None`` once closed and empty. ``lossless``: ``put`` waits for the slot to be free
    instead (nothing is replaced), for a file read as fast as possible."""

    def __init__(self, lossless: bool = False) -> None:
        self._item: PendingWindow | None = None
        self._closed = False
        self._lossless = lossless
        self._ready = threading.Condition()

    def put(self, item: PendingWindow) -> bool:
        """Leave ``item``; ``True`` if it replaced one the model had not taken."""
        with self._ready:
            while self._lossless and self._item is not None and not self._closed:
                self._ready.wait()
            replaced = self._item is not None
            self._item = item
            self._ready.notify_all()
            return replaced

    def take(self) -> PendingWindow | None:
        with self._ready:
            while self._item is None and not self._closed:
                self._ready.wait()
            item, self._item = self._item, None
            self._ready.notify_all()
            return item

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()


@dataclass
class LiveReport:
    """What a live run did (``summary.json``). Latency: from the newest frame of a window
    becoming available to its decision being written, in milliseconds."""

    source: str
    task: str
    runtime: str
    realtime: bool
    fps: float
    frames: int = 0
    decisions: int = 0
    dropped: int = 0
    elapsed_s: float = 0.0
    decisions_per_s: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False

    def lines(self) -> list[str]:
        lat = self.latency_ms
        return [f"stream: {self.frames} frames, {self.decisions} decisions, {self.dropped} "
                f"dropped in {self.elapsed_s:.1f} s ({self.decisions_per_s:.2f} decisions/s"
                f"{', interrupted' if self.interrupted else ''})",
                "  latency ms: " + (", ".join(f"{k} {v:.1f}" for k, v in lat.items())
                                    if lat else "no decisions")]


def latency_percentiles(latencies_ms: list[float]) -> dict[str, float]:
    """p50/p95/p99 (and the max) of the latencies, empty when there are none."""
    if not latencies_ms:
        return {}
    values = np.asarray(latencies_ms)
    return {"p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95)),
            "p99": float(np.percentile(values, 99)), "max": float(values.max())}


class WindowBuffer:
    """The recent prepared frames, enough for the causal window of the newest one."""

    def __init__(self, task: LiveTask) -> None:
        self.task = task
        self.frames: deque[tuple[SourceFrame, Tensor]] = deque(
            maxlen=(task.num_frames - 1) * task.frame_step + 1)

    def add(self, frame: SourceFrame, prepared: Tensor) -> PendingWindow:
        """Add the newest frame; its causal window."""
        self.frames.append((frame, prepared))
        t, step, held = self.task.num_frames, self.task.frame_step, len(self.frames)
        wanted = [held - 1 - (t - 1 - k) * step for k in range(t)]
        picked = [self.frames[max(0, i)] for i in wanted]
        target = picked[self.task.target][0]
        return PendingWindow(torch.stack([p for _, p in picked]), frame, target.index,
                             target.time_s, wanted[0] < 0)


class LiveRun:
    """One live run of ``task`` on ``source`` into ``output`` (see the module docstring).

    ``stop``: set it (e.g. from a SIGINT handler) to end the run cleanly; ``decide_every``:
    offer a window every that many frames.
    """

    def __init__(self, task: LiveTask, source: LiveSource, output: str | Path,
                 runtime: str = "torch", overlay: bool = False,
                 stop: threading.Event | None = None, decide_every: int = 1) -> None:
        if decide_every < 1:
            raise ValueError(f"decide_every must be >= 1 frame, got {decide_every}")
        self.task, self.source, self.output = task, source, Path(output)
        self.stop = stop or threading.Event()
        self.decide_every = decide_every
        # a file read unpaced waits for the model: no frame is due, so none is dropped
        self.mailbox = Mailbox(lossless=not source.realtime and not source.live)
        self.report = LiveReport(source.source, task.name, runtime, source.realtime,
                                 source.fps)
        self.latencies: list[float] = []
        self.latest: Decision | None = None
        self.overlay = OverlayVideo(self.output / OVERLAY_NAME, source.fps) if overlay else None
        self.errors: list[BaseException] = []

    def run(self) -> LiveReport:
        """Decode and decide until the source ends or :attr:`stop` is set; the report is also
        written to ``summary.json``."""
        self.output.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        with open(self.output / DECISIONS_NAME, "w", encoding="utf-8") as log_file:
            threads = [threading.Thread(target=self._guarded, args=(self._decode,),
                                        name="live-decode", daemon=True),
                       threading.Thread(target=self._guarded, args=(self._model, log_file),
                                        name="live-model", daemon=True)]
            for thread in threads:
                thread.start()
            for thread in threads:
                while thread.is_alive():  # short waits: a SIGINT handler runs in between
                    thread.join(0.1)
        self.source.close()
        if self.overlay is not None:
            self.overlay.close()
        if self.errors:
            raise self.errors[0]
        return self._finish(time.perf_counter() - start)

    def _guarded(self, work: Callable[..., None], *args: Any) -> None:
        try:
            work(*args)
        except BaseException as exc:  # re-raised in the calling thread by run()
            self.errors.append(exc)
            self.stop.set()
            self.mailbox.close()

    def _decode(self) -> None:
        buffer = WindowBuffer(self.task)
        try:
            for frame in self.source.frames(self.stop):
                prepared = self.task.prepare(frame.image)
                window = buffer.add(frame, prepared)
                self.report.frames += 1
                offered = frame.index % self.decide_every == 0 and self.task.wants(frame.index)
                if offered and self.mailbox.put(window):
                    self.report.dropped += 1
                if self.overlay is not None:
                    self._draw(prepared)
        finally:
            self.mailbox.close()

    def _draw(self, prepared: Tensor) -> None:
        frame = prepared.permute(1, 2, 0).numpy()
        latest = self.latest
        self.overlay.write(frame if latest is None else self.task.draw(frame, latest))

    def _model(self, log_file: TextIO) -> None:
        while (window := self.mailbox.take()) is not None:
            decision = self.task.decide(window.frames)
            done = time.perf_counter()
            latency = (done - window.newest.arrived) * 1000
            self.latencies.append(latency)
            self.latest = decision
            self.report.decisions += 1
            log_file.write(json.dumps(decision_record(window, decision, latency)) + "\n")
            log_file.flush()

    def _finish(self, elapsed: float) -> LiveReport:
        report = self.report
        report.elapsed_s = elapsed
        report.decisions_per_s = report.decisions / elapsed if elapsed > 0 else 0.0
        report.latency_ms = latency_percentiles(self.latencies)
        report.interrupted = self.stop.is_set() and not self.errors
        atomic_write_json(asdict(report), self.output / SUMMARY_NAME)
        return report


def decision_record(window: PendingWindow, decision: Decision, latency_ms: float
                    ) -> dict[str, Any]:
    """One ``decisions.jsonl`` line: the frame decided about (index and time), the newest
    frame of the window, wall-clock time, latency and the prediction."""
    return {"frame": window.target_index, "frame_time": round(window.target_time_s, 6),
            "newest_frame": window.newest.index, "wall_time": round(time.time(), 6),
            "latency_ms": round(latency_ms, 3), "partial": window.partial,
            "prediction": decision.prediction}


def load_live_model(checkpoint: str | Path, runtime: str = "torch", device: str = "auto"
                    ) -> tuple[TaskModel, list[str]]:
    """The task model of ``checkpoint`` on ``runtime`` (``torch``: a fine-tuned directory;
    ``onnx``: a file written by ``endofm export``) and its class names."""
    if runtime == "onnx":
        from endofm.deploy.onnx_task import load_onnx_task_model

        task_model, meta = load_onnx_task_model(checkpoint, device)
        return task_model, list(meta["class_names"])
    if runtime != "torch":
        raise ValueError(f"runtime must be torch or onnx, got {runtime!r}")
    task_model = load_task_model(checkpoint)
    return task_model, task_class_names(task_model)


def open_live_run(checkpoint: str | Path, source: str, output: str | Path, *,
                  runtime: str = "torch", realtime: bool = True, overlay: bool = False,
                  device: str = "auto", precision: str = "auto",
                  threshold: float | None = None, stop: threading.Event | None = None,
                  decide_every: int = 1) -> LiveRun:
    """A :class:`LiveRun` of ``checkpoint`` on ``source`` (call ``run()``).

    Args:
        checkpoint: a fine-tuned task directory (``runtime="torch"``) or an exported ONNX
            file (``runtime="onnx"``).
        source: a video file, ``/dev/videoN`` or a stream URL.
        output: the folder for ``decisions.jsonl``, ``summary.json`` and ``overlay.mp4``;
            one already holding a stream's decisions is refused.
        realtime: play a file at its frame rate (live sources pace themselves).
        overlay: also write ``overlay.mp4``.
        device, precision: PyTorch's (ONNX Runtime: ``device`` picks the provider and the
            graph runs in fp32).
        threshold: classification's and detection's decision threshold (default: the
            model's).
        stop: an event that ends the run cleanly when set.
        decide_every: offer a window every this many frames.
    """
    if (Path(output) / DECISIONS_NAME).exists():
        raise FileExistsError(f"{Path(output) / DECISIONS_NAME}: this folder already holds a "
                              "stream's decisions; choose another --output")
    task_model, names = load_live_model(checkpoint, runtime, device)
    options: dict[str, Any] = {"device": "cpu" if runtime == "onnx" else device,
                               "precision": "fp32" if runtime == "onnx" else precision}
    if threshold is not None and task_model.task in ("classification", "detection"):
        options["threshold"] = threshold
    live = LiveSource(source, realtime)
    task = live_task(task_model, live.fps, names, **options)
    live.short_side = task.short_side
    return LiveRun(task, live, output, runtime, overlay, stop, decide_every)
