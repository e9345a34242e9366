"""What every command that writes per-video folders shares (``predict``, ``attention``):
overlay videos, the settings table of a report, and the one per-video loop
(:func:`run_videos`: skip finished videos, run the others, record each video's errors, close
with ``index.html`` and ``run.json`` built from the per-video records)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from endofm import __version__
from endofm.data import VideoError, VideoWriter
from endofm.inference.extract import VideoInput, collect_inputs
from endofm.inference.report import write_index
from endofm.inference.run_folder import RunFolder
from endofm.inference.windowed import Windowed
from endofm.runner import VideoJob, WindowOutput
from endofm.utils.progress import progress


class OverlayVideo:
    """An MP4 of overlay frames (even-cropped), opened on the first frame."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.fps, self.writer = path, fps, None

    def write(self, frame: np.ndarray) -> None:
        h, w = frame.shape[0] // 2 * 2, frame.shape[1] // 2 * 2
        if self.writer is None:
            self.writer = VideoWriter(self.path, self.fps, h, w)
        self.writer.write(frame[:h, :w])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def report_settings(checkpoint: str, model: Windowed, job: VideoJob) -> dict:
    """A report's settings table: the run's settings, then this video's resolved ones."""
    return {"checkpoint": checkpoint, **model.settings(), **model.resolved(job),
            "endofm": __version__}


def finished(folder: RunFolder, v: VideoInput) -> bool:
    """Recorded without an error, with its report on disk."""
    return folder.finished(v.stem) and (folder.output / v.stem / "report.html").is_file()


def open_jobs(model: Windowed, folder: RunFolder,
              todo: Sequence[VideoInput]) -> list[tuple[VideoInput, VideoJob]]:
    """Open every video to do; one that cannot be opened is recorded with its error."""
    opened = []
    for v in todo:
        try:
            opened.append((v, v.open(model)))
        except VideoError as exc:
            folder.save_record(v.stem, {"video": v.key, "row": None, "error": exc.reason,
                                        "failed_windows": 0, "resolved": {}})
    return opened


def write_run(folder: RunFolder, inputs: Sequence[VideoInput], checkpoint: str,
              skipped: list[dict], title: str, **extra: object) -> dict[str, object]:
    """``index.html`` (one row per video with a report) and ``run.json`` from the records
    (``extra``: more top-level entries, e.g. the task)."""
    rows, videos, errors = [], {}, []
    for v in inputs:
        record = folder.load_record(v.stem) or {"error": "not processed", "row": None}
        if record.get("row"):
            rows.append(record["row"])
            videos[v.key] = record["row"] | {"resolved": record.get("resolved", {})}
        if record.get("error"):
            errors.append({"path": str(v.path), "reason": record["error"],
                           "failed_windows": record.get("failed_windows", 0)})
    columns = list(dict.fromkeys(k for r in rows for k in r if k not in ("video", "report")))
    write_index(folder.output / "index.html", title, rows, ["video", *columns])
    folder.write_run(checkpoint, True, **extra, num_videos=len(inputs), videos=videos,
                     errors=errors, skipped=skipped)
    return json.loads(folder.run_file.read_text())


class VideoOutputs(Protocol):
    """One video's outputs, streamed window batch by window batch into its folder."""

    job: VideoJob
    errors: list[str]

    def add(self, out: WindowOutput) -> None:
        """Take one batch of the video's windows (outputs, or the windows that failed)."""

    def finish(self) -> dict[str, object]:
        """Close the files, write ``report.html``; returns the video's ``index.html`` row."""


def run_videos(model: Windowed, folder: RunFolder, sources: Sequence[str | Path],
               outputs: Callable[[Path, VideoJob], VideoOutputs], checkpoint: str, title: str,
               progress_enabled: bool = True, **extra: object) -> dict[str, object]:
    """Run ``model`` over every video of ``sources`` into ``folder``, one per-video folder each.

    Args:
        model: the windowed model (its ``run`` yields the window batches of the jobs).
        folder: the guarded output folder (checked before anything is written).
        sources: videos, frame folders, folders of them or manifests.
        outputs: builds a video's :class:`VideoOutputs` from its folder and job.
        checkpoint: the checkpoint recorded in ``run.json`` and every report.
        title: the title of ``index.html``.
        progress_enabled: show the per-video progress bar.
        **extra: more top-level ``run.json`` entries (e.g. the task).

    Returns:
        The ``run.json`` content.
    """
    skipped: list[dict] = []
    inputs = collect_inputs(sources, skipped)
    folder.check()
    todo = [v for v in inputs if not finished(folder, v)]
    bar = progress(total=len(inputs), desc="videos", unit="video",
                   initial=len(inputs) - len(todo), enabled=progress_enabled)
    opened = open_jobs(model, folder, todo)
    bar.update(len(todo) - len(opened))
    current: VideoOutputs | None = None
    for out in model.run([job for _, job in opened]):
        v, job = opened[out.job]
        if current is None or current.job is not job:
            current = outputs(folder.output / v.stem, job)
        current.add(out)
        if out.last:
            row = current.finish() | {"report": f"{v.stem}/report.html"}
            folder.save_record(v.stem, {"video": v.key, "row": row,
                                        "error": current.errors[0] if current.errors else None,
                                        "failed_windows": len(current.errors),
                                        "resolved": model.resolved(job)})
            bar.set_postfix(video=v.key)
            bar.update()
    bar.close()
    return write_run(folder, inputs, checkpoint, skipped, title, **extra)
