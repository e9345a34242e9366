"""Score prediction files against a phase dataset's annotations (no videos needed).

Prediction files are laid out like the annotations: one file per video in the predictions
folder, named as the video's annotation file (Cholec80 ``videoNN-phase.txt``, AutoLaparo
``label_NN.txt``) or ``<video>-phase.txt``, with ``Frame<TAB>Phase`` rows at any rate and
phases as names or 0-based indices (AutoLaparo's files: 1-based, as its labels). Each video
is scored at its prediction file's rate: the ground truth is sampled at the prediction rows'
times, and the relaxed boundary spans 10 s of those rows.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from endofm.data.phase import (
    CHOLEC80_PHASES,
    AnnotationError,
    PhaseDataset,
    PhaseTrack,
    PhaseVideo,
    read_phase_dataset,
    read_phase_file,
    split_videos,
)
from endofm.data.phase.datasets import fit_to_video
from endofm.tasks.phase.metrics import RelaxedMode, score_videos
from endofm.utils.io import atomic_write_json, atomic_write_text


def prediction_file(folder: Path, video: PhaseVideo) -> Path | None:
    """The prediction file of ``video`` in ``folder`` (module docstring), or ``None``."""
    names = [video.annotation.name] if video.annotation.suffix == ".txt" else []
    for name in (*names, f"{video.name}-phase.txt"):
        if (folder / name).is_file():
            return folder / name
    return None


def read_prediction(path: Path, video: PhaseVideo, dataset: PhaseDataset) -> PhaseTrack:
    """A prediction file read with the annotation's ``Frame`` conventions (what the column
    counts, its first value, AutoLaparo's 1-based phases) and fitted to the ground truth's
    length (a file counting seconds is recognised by its length)."""
    one_based = int(dataset.layout == "autolaparo")
    track = read_phase_file(path, dataset.phases, video.frame_fps, first_frame=one_based,
                            index_base=one_based)
    return fit_to_video(track, path, video.phases.duration_s, video.frame_fps)


def aligned(video: PhaseVideo, prediction: PhaseTrack) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth and prediction on the prediction's rows → int64 ``[N]`` each."""
    duration = video.phases.duration_s
    return (video.phases.resample(prediction.rate, duration),
            prediction.resample(prediction.rate, duration))


def score_predictions(predictions: str | Path, data: str | Path, split: str = "test",
                      mode: RelaxedMode | str = RelaxedMode.official, layout: str = "auto",
                      phases: tuple[str, ...] = ()) -> dict[str, Any]:
    """``metrics.json`` content for the prediction files in ``predictions`` against the
    annotations of ``split`` (``train``, ``val``, ``test`` or ``all``) of the dataset at
    ``data``. A video of the split without a prediction file is an error naming it."""
    folder = Path(predictions)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: predictions folder not found")
    dataset = read_phase_dataset(data, layout, need_videos=False, phases=phases)
    chosen = split_videos(dataset.videos, dataset.layout) if len(dataset.videos) > 1 else None
    names = (set(chosen.names(split)) if chosen is not None and split != "all"
             else {v.name for v in dataset.videos})
    videos = [v for v in dataset.videos if v.name in names]
    missing = [v.name for v in videos if prediction_file(folder, v) is None]
    if missing:
        raise AnnotationError(folder, f"no prediction file for {len(missing)} video(s) of the "
                                      f"{split} split: {', '.join(missing[:10])}")
    triples, rates = [], []
    for video in videos:
        track = read_prediction(prediction_file(folder, video), video, dataset)
        gt, pred = aligned(video, track)
        triples.append((video.name, gt, pred))
        rates.append(track.rate)
    result = score_videos(triples, rates, dataset.phases,
                          cholec80=dataset.phases == CHOLEC80_PHASES, mode=mode)
    result |= {"split": split, "split_rule": chosen.rule if chosen else "all videos",
               "num_videos": len(videos), "predictions": str(folder), "data": str(data),
               "phases": list(dataset.phases)}
    return result


def write_scores(result: dict[str, Any], out_dir: str | Path) -> Path:
    """``metrics.json`` and ``per_video.csv`` (the per-video table) into ``out_dir``."""
    out = Path(out_dir)
    rows = result["per_video"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(buf.getvalue(), out / "per_video.csv")
    return atomic_write_json(result, out / "metrics.json")
