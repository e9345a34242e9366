"""A generic CSV of phase segments: ``video,start_s,end_s,phase`` (optionally ``split``).

Each video's segments, sorted by start, must tile its timeline from 0 s: a segment starting
before the previous one ends (an overlap) or after it (a gap) is an error naming both rows.
The segments become a :class:`PhaseTrack` at :data:`SEGMENT_RATE` rows per second.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from endofm.data.manifest import csv_records
from endofm.data.phase.labels import AnnotationError, PhaseTrack, phase_index, report

COLUMNS = ("video", "start_s", "end_s", "phase")
SEGMENT_RATE = 10.0  # rows per second of the track a CSV becomes
TOLERANCE_S = 1e-3


def read_segment_rows(path: Path) -> list[dict[str, str]]:
    """The CSV's rows, stripped (:func:`endofm.data.manifest.csv_records`: a byte-order mark,
    comma, semicolon or tab), with their line number under ``line``; missing columns are an
    error."""
    if not path.is_file():
        raise AnnotationError(path, "segments file not found")
    records = csv_records(path.read_text(encoding="utf-8"))
    header = [h.strip() for h in records[0][1]] if records else []
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise AnnotationError(path, f"line 1: missing column(s) {', '.join(missing)} "
                                    f"(phase segments want {','.join(COLUMNS)}; a "
                                    "classification manifest's header starts with path)")
    return [{**{h: (r[i].strip() if i < len(r) else "") for i, h in enumerate(header)},
             "line": str(n)} for n, r in records[1:]]


def parse_times(path: Path, row: dict[str, str]) -> tuple[float, float]:
    try:
        start, end = float(row["start_s"]), float(row["end_s"])
    except (TypeError, ValueError):
        raise AnnotationError(path, f"line {row['line']}: start_s/end_s must be numbers, got "
                                    f"{row['start_s']!r}, {row['end_s']!r}") from None
    if not 0 <= start < end:
        raise AnnotationError(path, f"line {row['line']}: want 0 <= start_s < end_s, got "
                                    f"{start:g}, {end:g}")
    return start, end


def check_tiling(path: Path, video: str, rows: list[dict[str, str]],
                 times: list[tuple[float, float]]) -> None:
    """Sorted segments must start at 0 and each start where the previous ends."""
    if times[0][0] > TOLERANCE_S:
        raise AnnotationError(path, f"line {rows[0]['line']}: video {video}: gap 0–"
                                    f"{times[0][0]:g} s before the first segment")
    for (prev_row, (_, prev_end)), (row, (start, _)) in zip(
            zip(rows, times, strict=True), zip(rows[1:], times[1:], strict=True),
            strict=False):
        if start < prev_end - TOLERANCE_S:
            raise AnnotationError(path, f"line {row['line']}: video {video}: overlaps line "
                                        f"{prev_row['line']} ({start:g} s < {prev_end:g} s)")
        if start > prev_end + TOLERANCE_S:
            raise AnnotationError(path, f"line {row['line']}: video {video}: gap "
                                        f"{prev_end:g}–{start:g} s after line {prev_row['line']}")


def segment_track(rows: list[dict[str, str]], times: list[tuple[float, float]],
                  labels: list[int]) -> PhaseTrack:
    """Tiled segments → the phase at the middle of every 1/:data:`SEGMENT_RATE` s row."""
    count = max(1, round(times[-1][1] * SEGMENT_RATE))
    mids = (np.arange(count) + 0.5) / SEGMENT_RATE
    ends = np.array([end for _, end in times])
    which = np.minimum(np.searchsorted(ends, mids, side="right"), len(ends) - 1)
    return PhaseTrack(np.asarray(labels, dtype=np.int64)[which], SEGMENT_RATE)


def read_segments(path: str | Path, phases: Sequence[str] = (),
                  errors: list[dict[str, str]] | None = None
                  ) -> tuple[dict[str, tuple[PhaseTrack, str | None]], tuple[str, ...]]:
    """``{video: (track, split or None)}`` and the phase names (``phases`` when given, else in
    order of first appearance; then a numeric phase is a 0-based index into ``phases``)."""
    path = Path(path)
    rows = read_segment_rows(path)
    names = list(phases) or list(dict.fromkeys(
        r["phase"].strip() for r in rows if not r["phase"].strip().isdigit()))
    by_video: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_video.setdefault(row["video"].strip(), []).append(row)
    out: dict[str, tuple[PhaseTrack, str | None]] = {}
    for video, group in by_video.items():
        try:
            out[video] = (video_track(path, video, group, names), group[0].get("split"))
        except AnnotationError as exc:
            report(errors, exc.path, exc.reason)
    return out, tuple(names)


def video_track(path: Path, video: str, group: list[dict[str, str]],
                names: Sequence[str]) -> PhaseTrack:
    """One video's rows → its track (times checked, phases resolved, tiling checked)."""
    timed = sorted(((parse_times(path, r), r) for r in group), key=lambda t: t[0])
    rows = [r for _, r in timed]
    times = [t for t, _ in timed]
    labels = []
    for row in rows:
        index = phase_index(row["phase"].strip(), names, 0)
        if index is None:
            raise AnnotationError(path, f"line {row['line']}: unknown phase "
                                        f"{row['phase']!r} (known: {', '.join(names)})")
        labels.append(index)
    check_tiling(path, video, rows, times)
    return segment_track(rows, times, labels)
