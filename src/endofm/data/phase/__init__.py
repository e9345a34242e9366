"""Surgical phase datasets: Cholec80, AutoLaparo and a generic segments CSV, their splits and
their inspection."""

from endofm.data.phase.datasets import (
    AUTOLAPARO_PHASES,
    CHOLEC80_PHASES,
    LAYOUTS,
    PhaseDataset,
    PhaseVideo,
    phase_durations,
    read_phase_dataset,
)
from endofm.data.phase.labels import AnnotationError, PhaseTrack, read_phase_file, segments
from endofm.data.phase.splits import Split, split_videos
from endofm.data.phase.tools import ToolTrack, read_tool_file

__all__ = [
    "AUTOLAPARO_PHASES",
    "CHOLEC80_PHASES",
    "LAYOUTS",
    "AnnotationError",
    "PhaseDataset",
    "PhaseTrack",
    "PhaseVideo",
    "Split",
    "ToolTrack",
    "phase_durations",
    "read_phase_dataset",
    "read_phase_file",
    "read_tool_file",
    "segments",
    "split_videos",
]
