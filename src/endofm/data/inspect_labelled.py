"""``endofm data inspect`` for the own-data formats (:mod:`endofm.data.formats`).

Besides the common counts (``num_videos``, ``num_frames``, ``label_counts`` per class name,
``errors``), a labelled dataset's summary has ``classes`` (``[{"index", "id", "name"}]``),
``splits`` (per split the data gives — ``train``/``val``/``test``, or ``unassigned`` for items
that the training run carves by video — the videos and the label counts), ``frames_per_video``
(``min``, ``median``, ``max`` decoded frames), ``num_items`` (rows: several clips of one
video count once each) and ``multi_label``. Every row, file or
annotation left out is one entry of ``errors`` naming it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from endofm.data.datasets.records import DatasetError, VideoItem
from endofm.data.formats import FormatOptions, LabelledData, read_format
from endofm.data.video import VideoError, open_video
from endofm.utils.progress import progress

UNASSIGNED = "unassigned"


def frame_stats(counts: list[int]) -> dict[str, float]:
    if not counts:
        return {"min": 0, "median": 0, "max": 0}
    return {"min": int(min(counts)), "median": float(np.median(counts)), "max": int(max(counts))}


def item_labels(item: VideoItem, data: LabelledData) -> list[str]:
    indices = item.labels if data.multi_label else (item.label,)
    return [data.classes.names[i] for i in indices or ()]


def decoded_frames(path: Path, errors: list[dict[str, str]]) -> int | None:
    """Frames of a video, all decoded; ``None`` after appending the error."""
    try:
        return open_video(path).verify()
    except VideoError as exc:
        errors.append({"path": exc.path, "reason": exc.reason})
    except OSError as exc:
        errors.append({"path": str(path), "reason": f"unreadable ({exc})"})
    return None


def inspect_classification(root: Path, fmt: str, summary: dict[str, Any],
                           options: FormatOptions | None = None) -> dict[str, Any]:
    """Counts of a ``manifest`` / ``folders`` dataset: every video decoded once."""
    errors: list[dict[str, str]] = summary["errors"]
    try:
        data = read_format(fmt, root, options or FormatOptions(), errors)
    except DatasetError as exc:
        errors.append({"path": exc.path, "reason": exc.reason})
        return summary
    frames: dict[Path, int | None] = {}
    labels: Counter[str] = Counter()
    splits: dict[str, dict[str, Any]] = {}
    for item, tag in progress(list(zip(data.plan.items, data.plan.tags, strict=True)),
                              desc="inspect", unit="video"):
        if item.path not in frames:
            frames[item.path] = decoded_frames(item.path, errors)
        if frames[item.path] is None:
            continue
        names = item_labels(item, data)
        labels.update(names)
        part = splits.setdefault(tag or UNASSIGNED,
                                 {"videos": set(), "items": 0, "label_counts": Counter()})
        part["videos"].add(item.path)
        part["items"] += 1
        part["label_counts"].update(names)
    good = [n for n in frames.values() if n is not None]
    summary.update(
        num_videos=len(good), num_frames=sum(good),
        label_counts={n: labels[n] for n in data.classes.names},
        classes=data.classes.to_json(), multi_label=data.multi_label,
        num_items=sum(p["items"] for p in splits.values()),
        frames_per_video=frame_stats(good),
        splits={s: {"num_videos": len(p["videos"]), "num_items": p["items"],
                    "label_counts": {n: p["label_counts"][n] for n in data.classes.names}}
                for s, p in sorted(splits.items())})
    return summary
