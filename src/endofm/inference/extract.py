"""``endofm extract``: embeddings of every window of every video, written to a folder.

Output for a video ``<rel>`` (its path relative to its input root, extension dropped):
``DIR/<rel>.npy`` (``[windows, D]`` or ``[windows, D, h, w]``, written atomically), plus
``DIR/index.csv`` (one row per stored window, in ``.npy`` row order) and ``DIR/run.json``
(checkpoint, settings, version, errors). Per-video records under ``DIR/.records/`` make a
re-run skip finished videos; a run with other settings into the same folder is refused.
Under torchrun, videos are sharded across ranks; rank 0 writes the index and ``run.json``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from endofm import __version__
from endofm.data import VideoError, resolve_items
from endofm.data.manifest import is_frame_folder
from endofm.inference.encoder import EncodedBatch, VideoEncoder
from endofm.inference.progress import progress_bar
from endofm.inference.stream import VideoJob
from endofm.utils.distributed import all_gather_object, barrier, get_rank, get_world_size
from endofm.utils.io import atomic_write_json, atomic_write_text
from endofm.utils.progress import note

INDEX_COLUMNS = ("video", "window", "first_frame", "last_frame", "start_s", "end_s", "partial")
RECORDS = ".records"
DTYPES = ("float32", "float16")


@dataclass(frozen=True)
class VideoInput:
    """A video to process: its path, its name relative to its input root (``key``), and an
    optional time range (manifest rows)."""

    path: Path
    key: str
    start: float | None = None
    end: float | None = None

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
            found.append(VideoInput(path, rel.as_posix(), item.start, item.end))
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
    """What happened to one video: its index rows and its error (``None`` when complete)."""

    video: str
    rows: list[dict] = field(default_factory=list)
    error: str | None = None
    failed_windows: int = 0


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


class Extraction:
    """One extraction run of ``encoder`` over ``inputs`` into ``output`` (this rank's share)."""

    def __init__(self, encoder: VideoEncoder, inputs: Sequence[VideoInput], output: str | Path,
                 checkpoint: str, dtype: str = "float32", progress: bool = True) -> None:
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        self.encoder, self.inputs, self.output = encoder, list(inputs), Path(output)
        self.checkpoint, self.dtype, self.progress = checkpoint, dtype, progress
        self.settings = {"checkpoint": checkpoint, **encoder.settings(), "dtype": dtype}

    def record_path(self, v: VideoInput) -> Path:
        return self.output / RECORDS / f"{v.stem}.json"

    def npy_path(self, v: VideoInput) -> Path:
        return self.output / f"{v.stem}.npy"

    def finished(self, v: VideoInput) -> bool:
        """Recorded without error, with an ``.npy`` that reads and holds the recorded windows
        (a damaged or truncated one is extracted again, with a note naming it)."""
        path, npy = self.record_path(v), self.npy_path(v)
        if not path.is_file() or not npy.is_file():
            return False
        record = json.loads(path.read_text())
        if record.get("error") is not None:
            return False
        try:
            stored = np.load(npy, mmap_mode="r", allow_pickle=False).shape[0]
        except (OSError, ValueError, EOFError) as exc:
            note(f"{npy}: unreadable ({exc}); extracting {v.path} again")
            return False
        if stored != len(record["rows"]):
            note(f"{npy}: {stored} windows where {len(record['rows'])} were recorded; "
                 f"extracting {v.path} again")
            return False
        return True

    def check_settings(self) -> None:
        """A folder written with other settings is refused (no silent mix of features)."""
        run = self.output / "run.json"
        if not run.is_file():
            return
        before = json.loads(run.read_text()).get("settings", {})
        changed = sorted(k for k in set(before) | set(self.settings)
                         if before.get(k) != self.settings.get(k))
        if changed:
            diff = "; ".join(f"{k}: {before.get(k)!r} -> {self.settings.get(k)!r}"
                             for k in changed)
            raise ValueError(f"{self.output} holds features extracted with other settings "
                             f"({diff}); use another --output or the same settings")

    def run(self, skipped: list[dict] | None = None) -> ExtractReport:
        self.check_settings()
        barrier()
        if get_rank() == 0:
            self.write_run_json([], skipped or [], finished=False)
        mine = self.inputs[get_rank()::get_world_size()]
        todo = [v for v in mine if not self.finished(v)]
        resumed = len(mine) - len(todo)
        bar = progress_bar(len(mine), "videos", "video", self.progress and get_rank() == 0)
        bar.update(resumed)
        self.process(todo, bar)
        bar.close()
        barrier()
        return self.finish(resumed, skipped or [])

    def open_jobs(self, todo: Sequence[VideoInput]) -> list[tuple[VideoInput, VideoJob]]:
        """Open every video to do; one that cannot be opened gets its error record now."""
        jobs = []
        for v in todo:
            try:
                jobs.append((v, self.encoder.job(v.path, v.key, v.start, v.end)))
            except VideoError as exc:
                self.save_record(v, VideoRecord(v.key, error=exc.reason))
        return jobs

    def process(self, todo: Sequence[VideoInput], bar: Any) -> None:
        """Extract the videos of ``todo`` in one stream; write each ``.npy`` and record as soon
        as its last window is through."""
        opened = self.open_jobs(todo)
        bar.update(len(todo) - len(opened))
        show = self.progress and get_rank() == 0
        writer: FeatureWriter | None = None
        record, windows = VideoRecord(""), progress_bar(0, "", "window", False)
        for batch in self.encoder.run([job for _, job in opened]):
            v, job = opened[batch.job]
            if record.video != v.key:
                record = VideoRecord(v.key)
                windows = progress_bar(len(job.plan), v.key, "window", show, position=1,
                                       leave=False)
            windows.update(len(batch.windows) + len(batch.errors))
            if batch.features is not None:
                if writer is None:
                    writer = FeatureWriter(self.npy_path(v), len(job.plan),
                                           batch.features.shape[1:], self.dtype)
                writer.write(batch.features)
                record.rows += [{"video": v.key, **w.row()} for w in batch.windows]
            self.note_errors(record, batch, job)
            if batch.last:
                windows.close()
                if writer is not None:
                    writer.close()
                    writer = None
                elif record.error is None:
                    record.error = "no window could be decoded"
                self.save_record(v, record)
                bar.set_postfix_str(v.key)
                bar.update()

    @staticmethod
    def note_errors(record: VideoRecord, batch: EncodedBatch, job: VideoJob) -> None:
        if not batch.errors:
            return
        record.failed_windows += len(batch.errors)
        if record.error is None:
            window, reason = batch.errors[0]
            record.error = (f"window {window.index} (frames {window.first_frame}-"
                            f"{window.last_frame}) of {len(job.plan)}: {reason}")

    def save_record(self, v: VideoInput, record: VideoRecord) -> VideoRecord:
        atomic_write_json(record.__dict__, self.record_path(v))
        return record

    def load_record(self, v: VideoInput) -> VideoRecord | None:
        path = self.record_path(v)
        return VideoRecord(**json.loads(path.read_text())) if path.is_file() else None

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
            self.write_run_json(errors, skipped, finished=True)
        barrier()
        return ExtractReport(self.output, len(self.inputs), processed, resumed, errors, skipped)

    def write_index(self, records: list[VideoRecord]) -> Path:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=INDEX_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for record in records:
            writer.writerows(record.rows)
        return atomic_write_text(buf.getvalue(), self.output / "index.csv")

    def write_run_json(self, errors: list[dict], skipped: list[dict], finished: bool) -> Path:
        return atomic_write_json({"endofm_version": __version__, "checkpoint": self.checkpoint,
                                  "settings": self.settings, "num_videos": len(self.inputs),
                                  "finished": finished, "errors": errors, "skipped": skipped},
                                 self.output / "run.json")


def extract(encoder: VideoEncoder, sources: Sequence[str | Path], output: str | Path,
            checkpoint: str, dtype: str = "float32", progress: bool = True) -> ExtractReport:
    """Extract features of every video named by ``sources`` into ``output``."""
    skipped: list[dict] = []
    inputs = collect_inputs(sources, skipped)
    return Extraction(encoder, inputs, output, checkpoint, dtype, progress).run(skipped)
