"""``endofm extract``: embeddings of every window of every video, written to a folder.

Output for a video ``<rel>`` (its path relative to its input root, extension dropped):
``DIR/<rel>.npy`` (``[windows, D]`` or ``[windows, D, h, w]``, written atomically), plus
``DIR/index.csv`` (one row per stored window, in ``.npy`` row order) and ``DIR/run.json``
(checkpoint, settings, the resolved windows of every video, errors). The folder is guarded by
:class:`endofm.inference.run_folder.RunFolder`: a re-run skips finished videos, runs again those
that failed, and a run with other settings into the same folder is refused.
Under torchrun, videos are sharded across ranks; rank 0 writes the index and ``run.json``.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from endofm.data import VideoError, resolve_items
from endofm.data.manifest import is_frame_folder
from endofm.inference.encoder import VideoEncoder
from endofm.inference.run_folder import RunFolder
from endofm.inference.windowed import Windowed
from endofm.runner import VideoJob, WindowOutput
from endofm.utils.distributed import all_gather_object, barrier, get_rank, get_world_size
from endofm.utils.io import atomic_write_text
from endofm.utils.progress import progress

logger = logging.getLogger(__name__)

INDEX_COLUMNS = ("video", "window", "first_frame", "last_frame", "start_s", "end_s", "partial")
DTYPES = ("float32", "float16")


@dataclass(frozen=True)
class VideoInput:
    """A video to process: its path, its name relative to its input root (``key``), an
    optional time range and frame-folder rate (manifest rows)."""

    path: Path
    key: str
    start: float | None = None
    end: float | None = None
    fps: float | None = None

    def open(self, model: Windowed) -> VideoJob:
        """The video opened and planned by ``model``."""
        return model.job(self.path, self.key, self.start, self.end, self.fps)

    @property
    def stem(self) -> str:
        """The output name without extension (``<rel>`` of ``<rel>.npy``)."""
        rel = Path(self.key)
        stem = (rel.parent / rel.stem).as_posix() if rel.suffix else rel.as_posix()
        return stem if self.start is None else f"{stem}@{self.start:g}-{self.end:g}s"


def collect_inputs(sources: Sequence[str | Path],
                   skipped: list[dict[str, str]] | None = None) -> list[VideoInput]:
    """Videos named by ``sources`` (files, folders scanned recursively, frame folders,
    manifests). Two videos that would write the same output are an error."""
    found: list[VideoInput] = []
    for source in map(Path, sources):
        root = source if source.is_dir() and not is_frame_folder(source) else source.parent
        for item in resolve_items(source, skipped):
            path = Path(item.path)
            rel = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
            found.append(VideoInput(path, rel.as_posix(), item.start, item.end, item.fps))
    seen: dict[str, Path] = {}
    for v in found:
        if v.stem in seen:
            raise ValueError(f"{seen[v.stem]} and {v.path} would both be written to "
                             f"{v.stem}.npy; give them separate runs or folders")
        seen[v.stem] = v.path
    return found


class FeatureWriter:
    """Rows of one video's features streamed into a ``.npy`` memory map beside the target,
    renamed into place when complete (``[rows, *shape]``; fewer rows when windows failed)."""

    def __init__(self, target: Path, capacity: int, shape: tuple[int, ...], dtype: str) -> None:
        self.target = target
        target.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = target.with_name(f".{target.name}.tmp")
        self.rows = 0
        self.array = np.lib.format.open_memmap(self.tmp, mode="w+", dtype=dtype,
                                               shape=(capacity, *shape))

    def write(self, features: np.ndarray) -> None:
        self.array[self.rows:self.rows + len(features)] = features
        self.rows += len(features)

    def close(self) -> Path:
        if self.rows < len(self.array):  # some windows failed: keep only the stored rows
            kept = np.lib.format.open_memmap(self.target.with_name(f".{self.target.name}.tmp2"),
                                             mode="w+", dtype=self.array.dtype,
                                             shape=(self.rows, *self.array.shape[1:]))
            kept[:] = self.array[:self.rows]
            kept.flush()
            del self.array
            os.unlink(self.tmp)
            self.tmp, self.array = Path(kept.filename), kept
        self.array.flush()
        del self.array
        with open(self.tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(self.tmp, self.target)
        return self.target


@dataclass
class VideoRecord:
    """What happened to one video: its index rows, its resolved windows and its error
    (``None`` when complete)."""

    video: str
    rows: list[dict] = field(default_factory=list)
    error: str | None = None
    failed_windows: int = 0
    resolved: dict = field(default_factory=dict)


@dataclass
class ExtractReport:
    output: Path
    num_videos: int
    processed: int
    resumed: int
    errors: list[dict]
    skipped: list[dict]

    @property
    def ok(self) -> bool:
        return not self.errors


def window_error(window, reason: str, windows: int) -> str:
    """One failed window, in the words of every record."""
    return (f"window {window.index} (frames {window.first_frame}-{window.last_frame}) of "
            f"{windows}: {reason}")


class Extraction:
    """One extraction run of ``encoder`` over ``inputs`` into ``output`` (this rank's share)."""

    def __init__(self, encoder: VideoEncoder, inputs: Sequence[VideoInput], output: str | Path,
                 checkpoint: str, dtype: str = "float32", progress: bool = True) -> None:
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        self.encoder, self.inputs, self.output = encoder, list(inputs), Path(output)
        self.checkpoint, self.dtype, self.progress = checkpoint, dtype, progress
        self.folder = RunFolder(self.output, "extract",
                                {"checkpoint": checkpoint, **encoder.settings(), "dtype": dtype},
                                encoder.runner.runtime(), weights=[checkpoint])

    def npy_path(self, v: VideoInput) -> Path:
        return self.output / f"{v.stem}.npy"

    def finished(self, v: VideoInput) -> bool:
        """Recorded without error, with an ``.npy`` that reads and holds the recorded windows
        (a damaged or truncated one is extracted again, with a warning naming it)."""
        npy = self.npy_path(v)
        if not self.folder.finished(v.stem) or not npy.is_file():
            return False
        record = self.folder.load_record(v.stem)
        try:
            stored = np.load(npy, mmap_mode="r", allow_pickle=False).shape[0]
        except (OSError, ValueError, EOFError) as exc:
            logger.warning("%s: unreadable (%s); extracting %s again", npy, exc, v.path)
            return False
        if stored != len(record["rows"]):
            logger.warning("%s: %d windows where %d were recorded; extracting %s again", npy,
                           stored, len(record["rows"]), v.path)
            return False
        return True

    def run(self, skipped: list[dict] | None = None) -> ExtractReport:
        self.folder.check()
        barrier()
        if get_rank() == 0:
            self.folder.write_run(self.checkpoint, False, num_videos=len(self.inputs),
                                  errors=[], skipped=skipped or [])
        mine = self.inputs[get_rank()::get_world_size()]
        todo = [v for v in mine if not self.finished(v)]
        resumed = len(mine) - len(todo)
        bar = progress(total=len(mine), desc="videos", unit="video", initial=resumed,
                       enabled=self.progress and get_rank() == 0)
        self.process(todo, bar)
        bar.close()
        barrier()
        return self.finish(resumed, skipped or [])

    def open_jobs(self, todo: Sequence[VideoInput]) -> list[tuple[VideoInput, VideoJob]]:
        """Open every video to do; one that cannot be opened gets its error record now."""
        jobs = []
        for v in todo:
            try:
                jobs.append((v, v.open(self.encoder)))
            except VideoError as exc:
                self.save_record(v, VideoRecord(v.key, error=exc.reason))
        return jobs

    def process(self, todo: Sequence[VideoInput], bar: Any) -> None:
        """Extract the videos of ``todo`` in one stream; write each ``.npy`` and record as soon
        as its last window is through."""
        opened = self.open_jobs(todo)
        bar.update(len(todo) - len(opened))
        writer: FeatureWriter | None = None
        record = VideoRecord("")
        for batch in self.encoder.run([job for _, job in opened]):
            v, job = opened[batch.job]
            if record.video != v.key:
                record = VideoRecord(v.key, resolved=self.encoder.resolved(job))
            if batch.outputs is not None:
                if writer is None:
                    writer = FeatureWriter(self.npy_path(v), len(job.plan),
                                           batch.outputs.shape[1:], self.dtype)
                writer.write(batch.outputs)
                record.rows += [{"video": v.key, **w.row()} for w in batch.windows]
            self.note_errors(record, batch, job)
            if batch.last:
                if writer is not None:
                    writer.close()
                    writer = None
                elif record.error is None:
                    record.error = "no window could be decoded"
                self.save_record(v, record)
                bar.set_postfix(video=v.key)
                bar.update()

    @staticmethod
    def note_errors(record: VideoRecord, batch: WindowOutput, job: VideoJob) -> None:
        if not batch.errors:
            return
        record.failed_windows += len(batch.errors)
        if record.error is None:
            record.error = window_error(*batch.errors[0], len(job.plan))

    def save_record(self, v: VideoInput, record: VideoRecord) -> None:
        self.folder.save_record(v.stem, record.__dict__)

    def load_record(self, v: VideoInput) -> VideoRecord | None:
        found = self.folder.load_record(v.stem)
        return VideoRecord(**found) if found is not None else None

    def finish(self, resumed: int, skipped: list[dict]) -> ExtractReport:
        counts = all_gather_object((len(self.inputs[get_rank()::get_world_size()]) - resumed,
                                    resumed))
        processed = sum(c[0] for c in counts)
        resumed = sum(c[1] for c in counts)
        records = [(v, self.load_record(v)) for v in self.inputs]
        errors = [{"path": str(v.path), "reason": r.error if r else "not processed",
                   "failed_windows": r.failed_windows if r else 0}
                  for v, r in records if r is None or r.error is not None]
        if get_rank() == 0:
            self.write_index([r for _, r in records if r is not None])
            videos = {r.video: r.resolved for _, r in records if r is not None and r.resolved}
            self.folder.write_run(self.checkpoint, True, num_videos=len(self.inputs),
                                  videos=videos, errors=errors, skipped=skipped)
        barrier()
        return ExtractReport(self.output, len(self.inputs), processed, resumed, errors, skipped)

    def write_index(self, records: list[VideoRecord]) -> Path:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=INDEX_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for record in records:
            writer.writerows(record.rows)
        return atomic_write_text(buf.getvalue(), self.output / "index.csv")


def extract(encoder: VideoEncoder, sources: Sequence[str | Path], output: str | Path,
            checkpoint: str, dtype: str = "float32", progress: bool = True) -> ExtractReport:
    """Extract features of every video named by ``sources`` into ``output``."""
    skipped: list[dict] = []
    inputs = collect_inputs(sources, skipped)
    return Extraction(encoder, inputs, output, checkpoint, dtype, progress).run(skipped)
