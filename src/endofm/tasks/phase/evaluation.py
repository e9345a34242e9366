"""Evaluate a temporal model on videos: the phase metrics (scored exactly as
``evaluate phase --predictions`` scores the files written here), tool average precision,
and the prediction files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import average_precision_score
from torch import nn

from endofm.data.phase import CHOLEC80_PHASES, PhaseTrack, PhaseVideo
from endofm.tasks.phase.data import PhaseItem
from endofm.tasks.phase.metrics import RelaxedMode, score_videos
from endofm.tasks.phase.scoring import aligned, write_scores
from endofm.utils.io import atomic_write_text


@torch.no_grad()
def predict_items(model: nn.Module, items: Sequence[PhaseItem], device: torch.device
                  ) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Per video: phase probabilities ``[T, P]`` and tool probabilities ``[T, K]`` or
    ``None``."""
    out = []
    for item in items:
        phases, tools = model.probabilities(torch.from_numpy(item.features).to(device))
        out.append((phases.cpu().numpy(), None if tools is None else tools.cpu().numpy()))
    return out


def written_track(video: PhaseVideo, labels: np.ndarray, rate: float) -> PhaseTrack:
    """The predicted rows as a prediction file stores them: every ``round(frame_fps / rate)``
    annotation frames (the rate that file is read at)."""
    step = max(1, round(video.frame_fps / rate))
    return PhaseTrack(np.asarray(labels, dtype=np.int64), video.frame_fps / step)


def prediction_text(video: PhaseVideo, track: PhaseTrack, phases: Sequence[str],
                    first_frame: int) -> str:
    """``Frame<TAB>Phase`` rows (phase names) of ``track``, ``Frame`` counted as in the
    video's annotation."""
    step = round(video.frame_fps / track.rate)
    rows = (f"{first_frame + k * step}\t{phases[p]}\n" for k, p in enumerate(track.labels))
    return "Frame\tPhase\n" + "".join(rows)


def prediction_name(video: PhaseVideo) -> str:
    """The file name a prediction of ``video`` takes (its annotation's, or
    ``<name>-phase.txt``)."""
    return video.annotation.name if video.annotation.suffix == ".txt" else \
        f"{video.name}-phase.txt"


def tool_average_precision(truth: np.ndarray, scores: np.ndarray,
                           tools: Sequence[str]) -> dict[str, Any]:
    """Per-tool AP over all rows (``[N, K]`` each) and their mean over the tools that are
    both present and absent somewhere (AP is undefined otherwise; listed as ``None``)."""
    per_tool: dict[str, float | None] = {}
    for k, name in enumerate(tools):
        column = truth[:, k]
        defined = 0 < column.sum() < len(column)
        per_tool[name] = (float(average_precision_score(column, scores[:, k])) if defined
                          else None)
    values = [v for v in per_tool.values() if v is not None]
    return {"tool_map": float(np.mean(values)) if values else None, "tool_ap": per_tool}


def evaluate_items(model: nn.Module, items: Sequence[PhaseItem], device: torch.device,
                   phases: Sequence[str], tools: Sequence[str], relaxed: RelaxedMode | str,
                   out_dir: Path | None = None) -> dict[str, Any]:
    """Phase metrics (and tool AP) of ``model`` on ``items``; with ``out_dir``, the
    prediction files (``predictions/``), ``per_video.csv`` and the probabilities."""
    outputs = predict_items(model, items, device)
    triples, rates = [], []
    for item, (probs, _) in zip(items, outputs, strict=True):
        track = written_track(item.video, probs.argmax(1), item.rate)
        triples.append((item.name, *aligned(item.video, track)))
        rates.append(track.rate)
    result = score_videos(triples, rates, phases, cholec80=tuple(phases) == CHOLEC80_PHASES,
                          mode=relaxed)
    scored = [(it.tools, t) for it, (_, t) in zip(items, outputs, strict=True)
              if it.tools is not None and t is not None]
    if scored:
        result |= tool_average_precision(np.concatenate([s[0] for s in scored]),
                                         np.concatenate([s[1] for s in scored]), tools)
    if out_dir is not None:
        write_outputs(Path(out_dir), items, outputs, phases, result)
    return result


def write_outputs(out_dir: Path, items: Sequence[PhaseItem], outputs: list,
                  phases: Sequence[str], result: dict[str, Any]) -> None:
    """Prediction files laid out like the annotations, and the per-video table."""
    for item, (probs, _) in zip(items, outputs, strict=True):
        track = written_track(item.video, probs.argmax(1), item.rate)
        first = 1 if item.video.annotation.name.startswith("label_") else 0
        atomic_write_text(prediction_text(item.video, track, phases, first),
                          out_dir / "predictions" / prediction_name(item.video))
    write_scores(result, out_dir)
