"""``endofm data inspect`` for phase datasets: per video, its phases in order with their
durations, the time per phase, and every bad annotation (unknown phases, missing frames,
gaps and overlaps, annotations without a video) as an error line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from endofm.data.phase.datasets import PhaseVideo, phase_durations, read_phase_dataset
from endofm.data.phase.labels import segments
from endofm.data.phase.splits import split_videos


def video_summary(video: PhaseVideo, phases: tuple[str, ...]) -> dict[str, Any]:
    """One video: duration, annotation rate, its phase segments in order (phase, start_s,
    end_s) and the seconds of each phase."""
    rate = video.phases.rate
    runs = [{"phase": phases[p], "start_s": round(s / rate, 3), "end_s": round(e / rate, 3)}
            for p, s, e in segments(video.phases.labels)]
    return {"duration_s": round(video.phases.duration_s, 3), "rows_per_s": rate,
            "segments": runs,
            "phase_s": {k: round(v, 3) for k, v in phase_durations(video, phases).items()},
            "tools": video.tools is not None}


def inspect_phase_dataset(root: str | Path, layout: str = "auto") -> dict[str, Any]:
    """A phase dataset's summary in the shape of ``endofm.data.inspect.inspect_dataset``'s,
    plus ``phases``, ``videos`` (:func:`video_summary` per video), ``phase_s`` (totals) and
    ``split`` (the rule and the parts)."""
    dataset = read_phase_dataset(root, layout, need_videos=True, errors=[])
    videos = {v.name: video_summary(v, dataset.phases) for v in dataset.videos}
    totals = {p: round(sum(v["phase_s"][p] for v in videos.values()), 3)
              for p in dataset.phases}
    out: dict[str, Any] = {
        "format": dataset.layout, "root": str(dataset.root), "num_videos": len(videos),
        "num_frames": 0, "label_counts": {p: sum(p in [s["phase"] for s in v["segments"]]
                                                 for v in videos.values())
                                          for p in dataset.phases},
        "num_masks": 0, "num_boxes": 0, "errors": dataset.errors,
        "phases": list(dataset.phases), "tools": list(dataset.tools), "videos": videos,
        "phase_s": totals}
    if len(dataset.videos) >= 2:
        split = split_videos(dataset.videos, dataset.layout)
        out["split"] = {"rule": split.rule, "train": list(split.names("train_no_val")),
                        "val": list(split.val), "test": list(split.test)}
    return out
