"""Phase annotations as time series: ``Frame<TAB>Phase`` files at any rate, names or indices.

A :class:`PhaseTrack` holds one phase index per annotation row; row ``k`` covers the seconds
``[k / rate, (k + 1) / rate)``. Files as downloaded (Cholec80: one row per frame at 25 fps)
and the 1-per-second files many repositories keep (``Frame`` 0, 25, 50, …) read alike: the
``Frame`` column must start at the layout's first frame and advance by a constant step ``d``,
so the rows come at ``frame_fps / d`` per second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from endofm.data.datasets.records import DatasetError
from endofm.data.datasets.records import report as report_dataset_error


class AnnotationError(DatasetError):
    """A bad annotation: ``path`` names the file (with its line where there is one)."""


def report(errors: list[dict[str, str]] | None, path: str | Path, reason: str) -> None:
    """Raise :class:`AnnotationError`, or append it to ``errors`` when a list is given."""
    report_dataset_error(errors, path, reason, AnnotationError)


@dataclass(frozen=True)
class PhaseTrack:
    """``labels`` int64 ``[N]`` (0-based phase indices), one per row, ``rate`` rows/second."""

    labels: np.ndarray
    rate: float

    @property
    def duration_s(self) -> float:
        return len(self.labels) / self.rate

    def at(self, times_s: np.ndarray) -> np.ndarray:
        """The phase at each of ``times_s`` ``[M]`` seconds (clamped to the track) → ``[M]``."""
        rows = np.floor(np.asarray(times_s, dtype=np.float64) * self.rate + 1e-9).astype(int)
        return self.labels[np.clip(rows, 0, len(self.labels) - 1)]

    def resample(self, rate: float, duration_s: float | None = None) -> np.ndarray:
        """The phase at ``k / rate`` for every ``k`` with ``k / rate < duration_s`` (default:
        the track's duration) → int64 ``[M]``."""
        duration = self.duration_s if duration_s is None else duration_s
        count = max(1, int(np.ceil(duration * rate - 1e-9)))
        return self.at(np.arange(count) / rate)


def read_rows(path: Path, columns: int | None = None) -> tuple[list[str], list[list[str]]]:
    """The header fields and the rows (whitespace-separated fields) of a ``Frame …`` file;
    blank lines are skipped. A missing header or a row of the wrong width is an error."""
    if not path.is_file():
        raise AnnotationError(path, "annotation file not found")
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    if not lines or not lines[0].strip().lower().startswith("frame"):
        raise AnnotationError(path, "line 1: expected a header starting with 'Frame' "
                                    "(Frame<TAB>Phase)")
    header = lines[0].split("\t") if "\t" in lines[0] else lines[0].split()
    width = columns or len(header)
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        fields = [f.strip() for f in fields]
        if len(fields) != width:
            raise AnnotationError(path, f"line {number}: {len(fields)} fields where the header "
                                        f"has {width} ({line.strip()!r})")
        rows.append([str(number), *fields])
    if not rows:
        raise AnnotationError(path, "no annotation rows")
    return header, rows


def frame_step(path: Path, rows: Sequence[Sequence[str]], first_frame: int) -> int:
    """The constant step between the rows' ``Frame`` values (``rows[i] = [line, frame, …]``);
    a row out of step names the frames missing from the annotation."""
    try:
        frames = [int(r[1]) for r in rows]
    except ValueError:
        bad = next(r for r in rows if not r[1].lstrip("-").isdigit())
        raise AnnotationError(path, f"line {bad[0]}: frame {bad[1]!r} is not a whole number"
                              ) from None
    if frames[0] != first_frame:
        raise AnnotationError(path, f"line {rows[0][0]}: the annotation starts at frame "
                                    f"{frames[0]}; frames {first_frame}–{frames[0] - 1} are "
                                    "missing from the annotation")
    step = frames[1] - frames[0] if len(frames) > 1 else 1
    if step < 1:
        raise AnnotationError(path, f"line {rows[1][0]}: frame {frames[1]} does not follow "
                                    f"frame {frames[0]}")
    for prev, row, frame in zip(frames, rows[1:], frames[1:], strict=False):
        if frame != prev + step:
            what = (f"frames {prev + step}–{frame - 1} are missing from the annotation"
                    if frame > prev + step else f"frame {frame} does not follow frame {prev} "
                                                f"(step {step})")
            raise AnnotationError(path, f"line {row[0]}: {what}")
    return step


def phase_index(value: str, phases: Sequence[str], index_base: int) -> int | None:
    """A phase name, or an index counted from ``index_base`` → 0-based index (``None`` when it
    is neither)."""
    if value in phases:
        return phases.index(value)
    if value.lstrip("-").isdigit() and 0 <= int(value) - index_base < len(phases):
        return int(value) - index_base
    return None


def phase_labels(path: Path, rows: Sequence[Sequence[str]], phases: Sequence[str],
                 index_base: int = 0) -> np.ndarray:
    """The phases of ``rows`` (``[line, frame, phase]``) as 0-based indices ``[N]``; an
    unknown phase name or an index out of range is an error naming the line."""
    out = np.empty(len(rows), dtype=np.int64)
    for i, row in enumerate(rows):
        index = phase_index(row[2], phases, index_base)
        if index is None:
            shown = ", ".join(phases)
            raise AnnotationError(path, f"line {row[0]}: unknown phase {row[2]!r} (known: "
                                        f"{shown}; or an index {index_base}–"
                                        f"{len(phases) - 1 + index_base})")
        out[i] = index
    return out


def read_phase_file(path: str | Path, phases: Sequence[str], frame_fps: float,
                    first_frame: int = 0, index_base: int = 0) -> PhaseTrack:
    """A ``Frame<TAB>Phase`` file as a :class:`PhaseTrack`.

    Args:
        path: the file (a header line starting with ``Frame``, then one row per annotated
            frame).
        phases: the phase names, in index order.
        frame_fps: what the ``Frame`` column counts per second (Cholec80: 25, the video's
            frames; AutoLaparo: 1, seconds).
        first_frame: the ``Frame`` value of the first row (0, or 1 for 1-based files).
        index_base: what a numeric phase counts from (0, or 1 for AutoLaparo's 1–7).
    """
    path = Path(path)
    _, rows = read_rows(path, columns=2)
    step = frame_step(path, rows, first_frame)
    return PhaseTrack(phase_labels(path, rows, phases, index_base), frame_fps / step)


def check_coverage(path: str | Path, track: PhaseTrack, video_s: float,
                   tolerance_s: float = 1.0) -> None:
    """The annotation must cover the video: durations may differ by at most ``tolerance_s``
    plus one row (else frames are missing from the annotation, or it belongs elsewhere)."""
    slack = tolerance_s + 1.0 / track.rate
    if track.duration_s + slack < video_s:
        raise AnnotationError(path, f"the file covers {track.duration_s:.1f} s but the "
                                    f"video is {video_s:.1f} s long: frames "
                                    f"{track.duration_s:.1f}–{video_s:.1f} s are missing from "
                                    "the annotation")
    if track.duration_s - slack > video_s:
        raise AnnotationError(path, f"the file covers {track.duration_s:.1f} s but the "
                                    f"video is only {video_s:.1f} s long")


def segments(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """Runs of one phase: ``(phase, start row, end row exclusive)`` in order."""
    labels = np.asarray(labels)
    if len(labels) == 0:
        return []
    cuts = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [len(labels)]])
    return [(int(labels[s]), int(s), int(e)) for s, e in zip(starts, ends, strict=True)]
