"""What every windowed command shares on top of :class:`endofm.runner.WindowRunner`: opening a
video and planning its windows, and the settings recorded for a run and for each video."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from endofm.data import open_video
from endofm.data.video import check_folder_fps
from endofm.models.checkpoint import MODEL_CONFIG_NAME, weights_metadata
from endofm.runner import FrameMaker, VideoJob, WindowOutput, WindowRunner, WindowSpec

DEFAULT_FOLDER_FPS = 30.0


def check_num_heads(checkpoint: str | Path, num_heads: int | None) -> None:
    """``num_heads`` is for files that do not record the head count (the released ones); for
    an endofm directory, which records it, another count is refused (it would be ignored, or
    would rebuild the attention wrongly)."""
    config = Path(checkpoint) / MODEL_CONFIG_NAME
    if num_heads is None:
        return
    if Path(checkpoint).is_file():  # a self-describing weights file records it in its header
        meta = weights_metadata(checkpoint)
        if meta is None:
            return
    elif config.is_file():
        meta = json.loads(config.read_text())
    else:
        return
    recorded = meta.get("num_heads") or (meta.get("backbone") or {}).get("num_heads")
    if recorded and int(recorded) != num_heads:
        raise ValueError(f"--num-heads {num_heads} means nothing for {checkpoint}: it records "
                         f"its head count ({recorded}); leave it out")


def open_job(path: str | Path, spec: WindowSpec, key: str | None = None,
             start_s: float | None = None, end_s: float | None = None,
             folder_fps: float = DEFAULT_FOLDER_FPS) -> VideoJob:
    """Open a video (a frame folder plays at ``folder_fps``) and plan its windows (over
    ``[start_s, end_s)`` seconds when given)."""
    source = open_video(path, folder_fps)
    first, count = 0, source.num_frames
    if start_s is not None and end_s is not None:
        first = min(round(start_s * source.fps), source.num_frames - 1)
        count = max(1, min(round(end_s * source.fps), source.num_frames) - first)
    return VideoJob(key or Path(path).name, source, spec.plan(count, source.fps, first))


class Windowed:
    """A model run window by window through a :class:`WindowRunner`.

    Subclasses give ``frames`` (the spatial preprocessing while decoding) and the three steps
    ``prepare`` / ``model_fn`` / ``finish`` (see :mod:`endofm.runner.runner`); ``model_fn``
    is the one seam where another runtime can stand in for the PyTorch model.
    """

    frames: FrameMaker

    def __init__(self, runner: WindowRunner, spec: WindowSpec,
                 folder_fps: float = DEFAULT_FOLDER_FPS) -> None:
        self.runner, self.spec = runner, spec
        check_folder_fps(folder_fps)
        self.folder_fps = float(folder_fps)

    @property
    def device(self):
        return self.runner.device

    @property
    def precision(self) -> str:
        return self.runner.precision

    def prepare(self, clips: Tensor) -> Tensor:
        raise NotImplementedError

    def model_fn(self, x: Tensor) -> Any:
        raise NotImplementedError

    def finish(self, raw: Any, clips: Tensor) -> Any:
        return raw

    def job(self, path: str | Path, key: str | None = None, start_s: float | None = None,
            end_s: float | None = None, fps: float | None = None) -> VideoJob:
        """Open ``path`` and plan its windows; ``fps`` (a manifest's column) overrides the
        frame-folder rate for this video."""
        return open_job(path, self.spec, key, start_s, end_s,
                        self.folder_fps if fps is None else fps)

    def run(self, jobs: Sequence[VideoJob]) -> Iterator[WindowOutput]:
        """Outputs for every window of ``jobs``, batch by batch, in order."""
        return self.runner.run(self, jobs)

    def settings(self) -> dict[str, object]:
        """Everything that changes the outputs, defaults spelled out (the folder guard compares
        these)."""
        return {**self.spec.describe(), **self.frames.describe(),
                "folder_fps": self.folder_fps, **self.runner.settings()}

    def resolved(self, job: VideoJob) -> dict[str, object]:
        """The settings as they came out for one video: frames, seconds and sizes."""
        source = job.source
        h, w = self.frames.output_size(source)
        return {"fps": round(source.fps, 6), "video_frames": source.num_frames,
                "video_size": f"{source.width}x{source.height}",
                "decoded_size": f"{w}x{h}", **self.input_size(h, w), **job.plan.resolved()}

    def input_size(self, height: int, width: int) -> dict[str, str]:
        """The model's input size for decoded frames of ``height x width`` (``WxH``)."""
        return {"model_input": f"{width}x{height}"}

