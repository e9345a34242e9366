"""The ``manifest`` format (classification): a CSV or JSONL file of labelled videos or clips.

Columns (CSV with a header line; JSONL objects with the same keys): ``path`` (a video file,
frame folder or image; relative to the manifest's folder), ``label``, and optional ``start``
and ``end`` (seconds; both or neither) and ``split`` (``train``/``val``/``test``). Labels are
class names or integers; ``a|b`` gives an item several labels (then the whole dataset is
multi-label, and an empty label means "none of the classes"). Classes: the integers
``0 … max`` (named by their number), or the names sorted, or the order of
``data.classes_file`` / a ``classes.yaml`` beside the manifest (a list of names, or
``name: integer label``).
"""

from __future__ import annotations

import json
from pathlib import Path

from endofm.data.datasets.records import DatasetError, VideoItem, report
from endofm.data.formats.classes import ClassSet, find_classes_file, read_classes_file
from endofm.data.formats.records import LabelledData
from endofm.data.formats.splits import plan_from_files, split_name
from endofm.data.manifest import csv_delimiter, csv_records, jsonl_objects

COLUMNS = ("path", "label", "start", "end", "split")
MANIFEST_NAMES = ("manifest.csv", "labels.csv", "manifest.jsonl", "labels.jsonl")
SUFFIXES = (".csv", ".jsonl", ".json")


def find_manifest(root: Path) -> Path:
    """``root`` itself (a ``.csv``/``.jsonl`` file) or the one manifest in the folder."""
    if root.is_file():
        return root
    for name in MANIFEST_NAMES:
        if (root / name).is_file():
            return root / name
    found = sorted(p for p in root.glob("*") if p.suffix.lower() in SUFFIXES
                   and p.name != "classes.yaml")
    if len(found) == 1:
        return found[0]
    raise DatasetError(root, "no manifest: give the .csv/.jsonl file as --data or name it "
                       f"one of {', '.join(MANIFEST_NAMES)}")


def is_manifest(root: Path) -> bool:
    """A labelled manifest: a CSV whose header starts with ``path`` or a JSONL whose first
    object has a ``path`` (other CSVs, e.g. phase segments, are not), or a folder holding one
    under a manifest name."""
    if root.is_dir():
        return any((root / name).is_file() for name in MANIFEST_NAMES)
    if not root.is_file() or root.suffix.lower() not in SUFFIXES:
        return False
    with open(root, encoding="utf-8-sig", errors="replace") as f:
        first = next((line for line in f if line.strip()), "")
    if root.suffix.lower() == ".csv":
        return first.split(csv_delimiter(first))[0].strip().lower() == "path"
    try:
        return "path" in json.loads(first)
    except (ValueError, TypeError):
        return False


def manifest_rows(path: Path) -> list[tuple[str, dict[str, str]]]:
    """``(where, row)`` pairs: ``where`` is ``file:line``; values are stripped strings."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".jsonl", ".json"):
        rows = []
        for where, obj in jsonl_objects(path, text):
            label = obj.get("label", obj.get("labels"))
            if isinstance(label, list):
                obj["label"] = "|".join(str(v) for v in label)
            rows.append((where, {k: "" if v is None else str(v).strip() for k, v in obj.items()}))
        return rows
    lines = csv_records(text)
    if not lines or [h.strip().lower() for h in lines[0][1]][:1] != ["path"]:
        raise DatasetError(path, "the first line must be a header starting with 'path' "
                           f"(columns: {', '.join(COLUMNS)})")
    header = [h.strip().lower() for h in lines[0][1]]
    unknown = sorted(set(header) - set(COLUMNS))
    if unknown or "label" not in header:
        raise DatasetError(path, f"columns {header}: need path and label; allowed {COLUMNS}")
    return [(f"{path}:{n}", {k: v.strip() for k, v in zip(header, r, strict=False)})
            for n, r in lines[1:]]


def label_tokens(raw: str, multi: bool) -> list[str]:
    return [t.strip() for t in raw.split("|") if t.strip()] if multi else [raw]


def class_set(tokens: set[str], classes_file: Path | None, num_classes: int | None
              ) -> tuple[ClassSet, dict[str, int]]:
    """The classes and the map from a label token to its model index."""
    if classes_file is not None:
        declared = read_classes_file(classes_file)
        order = sorted(declared, key=lambda n: declared[n])  # by their integer label
        lookup = {n: i for i, n in enumerate(order)}
        lookup |= {str(declared[n]): i for i, n in enumerate(order)}
        return ClassSet(tuple(order), tuple(int(declared[n]) for n in order)), lookup
    if tokens and all(t.lstrip("-").isdigit() for t in tokens):
        count = max(int(t) for t in tokens) + 1
        if num_classes is not None and num_classes > count:
            count = num_classes
        return ClassSet.numbered(count), {str(i): i for i in range(count)}
    names = sorted(tokens)
    return ClassSet.named(names), {n: i for i, n in enumerate(names)}


def parse_window(row: dict[str, str], where: str) -> tuple[float | None, float | None]:
    raw = row.get("start", ""), row.get("end", "")
    if not any(raw):
        return None, None
    try:
        start, end = float(raw[0]), float(raw[1])
    except ValueError:
        raise DatasetError(where, f"start/end {raw} must be numbers (seconds), both or "
                           "neither") from None
    if not 0 <= start < end:
        raise DatasetError(where, f"need 0 <= start < end, got {start}, {end}")
    return start, end


def read_labelled_manifest(root: str | Path, classes_file: str | None = None,
                           num_classes: int | None = None,
                           errors: list[dict[str, str]] | None = None,
                           known: ClassSet | None = None) -> LabelledData:
    """Every row of the manifest at (or in) ``root`` (module docstring). A row whose video is
    missing, with a label that is not a class, or with a bad window or split is an error
    naming ``file:line`` (with ``errors`` given: the row is reported there and left out).
    ``known``: a trained model's classes; labels (names or ids) are mapped onto them."""
    path = find_manifest(Path(root))
    rows = manifest_rows(path)
    multi = any("|" in row.get("label", "") for _, row in rows)
    tokens = {t for _, row in rows for t in label_tokens(row.get("label", ""), multi) if t}
    if known is not None:
        classes = known
        lookup = {n: i for i, n in enumerate(known.names)}
        lookup |= {str(c): i for i, c in enumerate(known.ids) if str(c) not in lookup}
    else:
        classes, lookup = class_set(tokens, find_classes_file(path.parent, classes_file),
                                    num_classes)
    items, tags = [], []
    for where, row in rows:
        try:
            item, tag = parse_row(row, where, path.parent, lookup, multi)
        except DatasetError as exc:
            report(errors, exc.path, exc.reason)
            continue
        items.append(item)
        tags.append(tag)
    if not items:
        raise DatasetError(path, "no usable rows")
    plan = plan_from_files(items, lambda it: str(it.path), path.parent, tags)
    return LabelledData(plan, classes, multi, errors if errors is not None else [])


def parse_row(row: dict[str, str], where: str, base: Path, lookup: dict[str, int],
              multi: bool) -> tuple[VideoItem, str | None]:
    """One manifest row as an item and its split (``None``: not given)."""
    if not row.get("path"):
        raise DatasetError(where, "missing path")
    video = Path(row["path"]) if Path(row["path"]).is_absolute() else base / row["path"]
    if not video.exists():
        raise DatasetError(where, f"video {video} does not exist")
    raw = row.get("label", "")
    tokens = label_tokens(raw, multi)
    if not multi and not raw:
        raise DatasetError(where, "missing label")
    unknown = [t for t in tokens if t not in lookup]
    if unknown:
        raise DatasetError(where, f"label {', '.join(unknown)} is not a class "
                           f"(classes: {', '.join(sorted(lookup))})")
    indices = tuple(sorted({lookup[t] for t in tokens}))
    start, end = parse_window(row, where)
    tag = split_name(row["split"], where) if row.get("split") else None
    item = VideoItem(video, indices[0] if indices else -1, start, end,
                     indices if multi else None)
    return item, tag
