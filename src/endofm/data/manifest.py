"""Generic video lists: CSV/JSONL manifests and recursive folder scans.

A manifest lists one clip per row: ``path`` (relative paths are resolved against the manifest's
folder), optional ``start``/``end`` in seconds, an optional integer ``label`` and an optional
``source`` name. CSV files may have a header naming these columns; without a header the columns
are positional: ``path`` | ``path,label`` | ``path,start,end`` | ``path,start,end,label`` |
``path,start,end,label,source``. An ``fps`` column (by header only) gives the frame rate of a
row that is a frame folder (video files carry their own). The release's ``path,-1`` lines read
as unlabelled clips (a negative label means "no label"). JSONL rows are objects with the same
keys. CSV files may be comma-, semicolon- or tab-separated (:func:`csv_records`) and may start
with a byte-order mark (spreadsheet exports).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from endofm.data.datasets.records import DatasetError
from endofm.data.images import is_mask_like
from endofm.data.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from endofm.utils.io import atomic_write_text

COLUMNS = ("path", "start", "end", "label", "source", "fps")
_POSITIONAL = {1: ("path",), 2: ("path", "label"), 3: ("path", "start", "end"),
               4: ("path", "start", "end", "label"), 5: COLUMNS[:5]}


@dataclass
class ClipItem:
    """One manifest row: a video (file or frame folder) and an optional time window in seconds."""

    path: Path
    start: float | None = None
    end: float | None = None
    label: int | None = None
    source: str | None = None
    fps: float | None = None


def _parse_row(row: dict[str, str | None], root: Path, where: str) -> ClipItem:
    def value(key: str) -> str | None:
        raw = row.get(key)
        return None if raw is None or str(raw).strip() == "" else str(raw).strip()

    def number(key: str) -> float | None:
        raw = value(key)
        try:
            return None if raw is None else float(raw)
        except ValueError:
            header = " (a header line must start with 'path')" if where.endswith(":1") else ""
            raise ValueError(f"{where}: {key} {raw!r} is not a number{header}") from None

    path = value("path")
    if path is None:
        raise ValueError(f"{where}: missing path")
    label = number("label")
    item = ClipItem(
        path=(root / path) if not Path(path).is_absolute() else Path(path),
        start=number("start"), end=number("end"),
        label=int(label) if label is not None and label >= 0 else None,
        source=value("source"), fps=number("fps"),
    )
    if item.fps is not None and not item.fps > 0:
        raise ValueError(f"{where}: fps must be positive, got {item.fps}")
    if (item.start is None) != (item.end is None):
        raise ValueError(f"{where}: give both start and end, or neither")
    if item.start is not None and not 0 <= item.start < item.end:
        raise ValueError(f"{where}: need 0 <= start < end, got {item.start}, {item.end}")
    return item


CSV_DELIMITERS = ",;\t"


def csv_delimiter(header: str) -> str:
    """A CSV's delimiter from its first line: the commonest of comma, semicolon (what
    spreadsheets write in locales with a decimal comma) and tab; comma when it has none."""
    counts = {d: header.count(d) for d in CSV_DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def csv_records(text: str) -> list[tuple[int, list[str]]]:
    """``(line number, fields)`` of every non-blank record of CSV ``text``: a byte-order mark
    dropped, fields split at the first line's :func:`csv_delimiter`."""
    text = text.removeprefix("\ufeff")
    first = next((line for line in text.splitlines() if line.strip()), "")
    reader = csv.reader(io.StringIO(text), delimiter=csv_delimiter(first))
    return [(reader.line_num, r) for r in reader if any(r)]


def _csv_rows(text: str) -> list[tuple[int, dict[str, str | None]]]:
    rows = csv_records(text)
    if rows and rows[0][1] and rows[0][1][0].strip().lower() == "path":
        header = [h.strip().lower() for h in rows[0][1]]
        unknown = set(header) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown manifest columns {sorted(unknown)}; allowed: {COLUMNS}")
        return [(n, dict(zip(header, r, strict=False))) for n, r in rows[1:]]
    out = []
    for n, r in rows:
        if len(r) not in _POSITIONAL:
            raise ValueError(f"line {n}: {len(r)} columns; expected 1 to 5")
        out.append((n, dict(zip(_POSITIONAL[len(r)], r, strict=True))))
    return out


def jsonl_objects(path: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    """``(where, object)`` for every non-blank line of the JSONL ``text`` read from ``path``;
    ``where`` is ``file:line``. A line that is not a JSON object raises :class:`DatasetError`
    naming its ``file:line``."""
    text = text.removeprefix("\ufeff")
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{n}", f"invalid JSON ({exc})") from exc
        if not isinstance(obj, dict):
            raise DatasetError(f"{path}:{n}", "expected a JSON object")
        out.append((f"{path}:{n}", obj))
    return out


def read_manifest(path: str | Path) -> list[ClipItem]:
    """Read a CSV or JSONL (``.jsonl``/``.json``) manifest. Errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in {".jsonl", ".json"}:
        rows = [(where, {k: None if v is None else str(v) for k, v in obj.items()})
                for where, obj in jsonl_objects(path, text)]
    else:
        try:
            rows = [(f"{path}:{n}", row) for n, row in _csv_rows(text)]
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc
    items = [_parse_row(row, path.parent, where) for where, row in rows]
    if not items:
        raise ValueError(f"{path}: manifest has no rows")
    return items


def write_manifest(items: list[ClipItem], path: str | Path) -> Path:
    """Write ``items`` as a CSV with a header, atomically; paths relative to the manifest when
    they lie below its folder."""
    path = Path(path)
    root = path.parent.resolve()
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for it in items:
        p = Path(it.path).resolve()
        rel = p.relative_to(root) if p.is_relative_to(root) else p
        writer.writerow([rel.as_posix(), _fmt(it.start), _fmt(it.end),
                         "" if it.label is None else it.label, it.source or "",
                         "" if it.fps is None else f"{it.fps:g}"])
    return atomic_write_text(buf.getvalue(), path)


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.6f}"


def is_frame_folder(path: Path) -> bool:
    """A directory whose entries include image files and no sub-directories."""
    entries = list(path.iterdir())
    return (not any(e.is_dir() for e in entries)
            and any(e.suffix.lower() in IMAGE_EXTENSIONS and not is_mask_like(e)
                    for e in entries))


def unsupported_files(root: Path, videos: list[Path]) -> list[Path]:
    """Files below ``root`` that are neither one of ``videos`` nor inside one of its folders."""
    found = {p for p in videos if p.is_file()}
    folders = {p for p in videos if p.is_dir()}
    return [p for p in sorted(root.rglob("*"))
            if p.is_file() and p not in found and p.parent not in folders]


def resolve_items(source: str | Path,
                  skipped: list[dict[str, str]] | None = None) -> list[ClipItem]:
    """Clips named by ``source``: a manifest (``.csv``/``.jsonl``/``.json``), a folder of videos
    (scanned recursively), a frame folder, or one video file. Files of a folder that are not
    videos are appended to ``skipped`` (``{"path", "reason"}``) when it is given."""
    source = Path(source)
    if source.is_file() and source.suffix.lower() in {".csv", ".jsonl", ".json"}:
        return read_manifest(source)
    if source.is_dir():
        videos = scan_videos(source)
        if skipped is not None:
            skipped += [{"path": str(p), "reason": "not a video file or frame folder"}
                        for p in unsupported_files(source, videos)]
        if not videos:
            raise ValueError(f"{source}: no videos or frame folders found")
        return [ClipItem(path=p) for p in videos]
    if not source.exists():
        raise FileNotFoundError(f"not found: {source}")
    return [ClipItem(path=source)]


def scan_videos(root: str | Path) -> list[Path]:
    """Video files (by extension) and frame folders below ``root``, recursively, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"video folder not found: {root}")
    if is_frame_folder(root):
        return [root]
    found: list[Path] = []
    for path in sorted(root.rglob("*")):
        if path.is_dir() and is_frame_folder(path):
            found.append(path)
        elif path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS:
            found.append(path)
    return found
