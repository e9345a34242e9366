"""Phase datasets in their download layouts, read into :class:`PhaseDataset`.

- ``cholec80``: ``videos/videoNN.mp4`` (25 fps), ``phase_annotations/videoNN-phase.txt``
  (``Frame<TAB>Phase``, 0-based frames, phase names) and, optionally,
  ``tool_annotations/videoNN-tool.txt`` (a row every 25 frames, seven 0/1 columns).
- ``autolaparo`` (Task 1, workflow): ``videos/NN.mp4`` and ``labels/label_NN.txt``
  (a header, then one row per second: 1-based second, 1-based phase 1–7).
- ``segments``: ``segments.csv`` with ``video,start_s,end_s,phase`` rows (a ``split`` column
  optional) and the videos under ``videos/`` (or beside the file); ``video`` is a file name,
  with or without its extension.

Annotation rows may come at any rate and phases as names or 0-based indices (AutoLaparo:
1-based, as released). Every bad annotation is one :class:`AnnotationError` naming the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from endofm.data.phase.labels import (
    AnnotationError,
    PhaseTrack,
    check_coverage,
    read_phase_file,
    report,
)
from endofm.data.phase.segments import read_segments
from endofm.data.phase.tools import ToolTrack, read_tool_file
from endofm.data.video import VIDEO_EXTENSIONS as VIDEO_SUFFIXES
from endofm.data.video import VideoError, open_video

CHOLEC80_PHASES = ("Preparation", "CalotTriangleDissection", "ClippingCutting",
                   "GallbladderDissection", "GallbladderPackaging", "CleaningCoagulation",
                   "GallbladderRetraction")
AUTOLAPARO_PHASES = ("Preparation", "Dividing Ligament and Peritoneum",
                     "Dividing Uterine Vessels and Ligament", "Transecting the Vagina",
                     "Specimen Removal", "Suturing", "Washing")
LAYOUTS = ("cholec80", "autolaparo", "segments")
CHOLEC80_VIDEO = re.compile(r"^video(\d+)$")
CHOLEC80_LABEL = re.compile(r"^video(\d+)-phase$")
AUTOLAPARO_LABEL = re.compile(r"^label_(\d+)$")


@dataclass(frozen=True)
class PhaseVideo:
    """One annotated procedure: ``name`` (``video01``), its number where the layout has one,
    the video file (``None`` when scoring predictions alone), the phases and the tools."""

    name: str
    number: int | None
    path: Path | None
    phases: PhaseTrack
    annotation: Path
    tools: ToolTrack | None = None
    split: str | None = None  # a split the annotation itself names (segments.csv)
    frame_fps: float = 1.0  # what the annotation's Frame column counts per second


@dataclass
class PhaseDataset:
    """The videos of a phase dataset with its phase (and tool) names."""

    layout: str
    root: Path
    phases: tuple[str, ...]
    videos: list[PhaseVideo]
    tools: tuple[str, ...] = ()
    errors: list[dict[str, str]] = field(default_factory=list)


def detect_layout(root: Path) -> str:
    """``cholec80`` (``phase_annotations/``), ``autolaparo`` (``labels/label_*.txt``) or
    ``segments`` (a ``segments.csv``, or ``root`` being a CSV file)."""
    if (root / "phase_annotations").is_dir():
        return "cholec80"
    if (root / "labels").is_dir() and any((root / "labels").glob("label_*.txt")):
        return "autolaparo"
    if root.suffix == ".csv" or (root / "segments.csv").is_file():
        return "segments"
    raise ValueError(f"{root}: not a phase dataset (no phase_annotations/ (Cholec80), "
                     "labels/label_NN.txt (AutoLaparo) or segments.csv)")


def find_video(folder: Path, stem: str) -> Path | None:
    """``folder/<stem>.<video suffix>`` (or ``folder/<stem>`` when it has a suffix)."""
    if (folder / stem).is_file():
        return folder / stem
    found = sorted(p for p in folder.glob(f"{glob_escape(stem)}.*")
                   if p.suffix.lower() in VIDEO_SUFFIXES)
    return found[0] if found else None


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def video_timing(annotation: Path, video: Path | None, need_videos: bool
                 ) -> tuple[float | None, float | None]:
    """``(fps, duration_s)`` of an annotation's video (``None, None`` without one)."""
    if video is None:
        if need_videos:
            raise AnnotationError(annotation, "annotation file for a video that does not exist")
        return None, None
    try:
        source = open_video(video)
    except VideoError as exc:
        raise AnnotationError(annotation, f"its video cannot be read ({exc.reason})") from None
    return source.fps, source.num_frames / source.fps


def fit_to_video(track: PhaseTrack, annotation: Path, length_s: float | None,
                 frame_fps: float) -> PhaseTrack:
    """Check ``track`` against its video's length. A 1-per-second file whose ``Frame`` column
    counts seconds (as some repositories keep Cholec80) is recognised by its length and read
    so; one that fits neither reading is an error."""
    if length_s is None:
        return track
    try:
        check_coverage(annotation, track, length_s)
    except AnnotationError:
        as_seconds = PhaseTrack(track.labels, track.rate / frame_fps)
        if frame_fps == 1 or abs(as_seconds.duration_s - length_s) > 1 + 1 / as_seconds.rate:
            raise
        return as_seconds
    return track


def read_video_track(annotation: Path, video: Path | None, need_videos: bool,
                     phases: tuple[str, ...], frame_fps: float, first_frame: int = 0,
                     index_base: int = 0) -> PhaseTrack:
    """An annotation file whose ``Frame`` column counts ``frame_fps`` per second, checked
    against its video's length."""
    length = video_timing(annotation, video, need_videos)[1]
    track = read_phase_file(annotation, phases, frame_fps, first_frame, index_base)
    return fit_to_video(track, annotation, length, frame_fps)


def read_cholec80(root: Path, need_videos: bool = True, phases: tuple[str, ...] = (),
                  errors: list[dict[str, str]] | None = None) -> PhaseDataset:
    """The Cholec80 layout (module docstring). ``need_videos=False`` reads annotations whose
    video is absent (scoring predictions)."""
    phases = phases or CHOLEC80_PHASES
    dataset = PhaseDataset("cholec80", root, phases, [], errors=[] if errors is None else errors)
    labels = sorted((p for p in (root / "phase_annotations").glob("*.txt")),
                    key=lambda p: (len(p.name), p.name))
    videos_dir = root / "videos"
    for annotation in labels:
        match = CHOLEC80_LABEL.match(annotation.stem)
        if not match:
            report(errors, annotation, "not a Cholec80 phase file name (videoNN-phase.txt)")
            continue
        name = f"video{match.group(1)}"
        try:
            video = find_video(videos_dir, name) if videos_dir.is_dir() else None
            fps, length = video_timing(annotation, video, need_videos)
            counts = fps or 25.0  # the Frame column counts the video's frames
            read = read_phase_file(annotation, phases, counts)
            track = fit_to_video(read, annotation, length, counts)
            counts = counts if track.rate == read.rate else 1.0  # it counts seconds
            tools = read_cholec80_tools(root, name, dataset, counts)
        except AnnotationError as exc:
            report(errors, exc.path, exc.reason)
            continue
        dataset.videos.append(PhaseVideo(name, int(match.group(1)), video, track, annotation,
                                         tools, frame_fps=counts))
    check_orphan_videos(dataset, videos_dir, {v.name for v in dataset.videos},
                        CHOLEC80_VIDEO)
    return dataset


def read_cholec80_tools(root: Path, name: str, dataset: PhaseDataset,
                        frame_fps: float) -> ToolTrack | None:
    """``tool_annotations/<name>-tool.txt`` when present; its ``Frame`` column counts what the
    phase file's does (``frame_fps`` per second)."""
    path = root / "tool_annotations" / f"{name}-tool.txt"
    if not path.is_file():
        return None
    tools = read_tool_file(path, frame_fps)
    if not dataset.tools:
        dataset.tools = tools.names
    elif tools.names != dataset.tools:
        raise AnnotationError(path, f"tool columns {list(tools.names)} differ from the other "
                                    f"videos' {list(dataset.tools)}")
    return tools


def check_orphan_videos(dataset: PhaseDataset, videos_dir: Path, annotated: set[str],
                        pattern: re.Pattern) -> None:
    """Videos without an annotation are listed in ``dataset.errors`` (never silently
    dropped)."""
    if not videos_dir.is_dir():
        return
    for video in sorted(videos_dir.iterdir()):
        if (video.suffix.lower() in VIDEO_SUFFIXES and video.stem not in annotated
                and pattern.match(video.stem)):
            dataset.errors.append({"path": str(video),
                                   "reason": "video without an annotation (not used)"})


def read_autolaparo(root: Path, need_videos: bool = True, phases: tuple[str, ...] = (),
                    errors: list[dict[str, str]] | None = None) -> PhaseDataset:
    """The AutoLaparo Task 1 layout (module docstring): 1-based seconds, phases 1–7."""
    phases = phases or AUTOLAPARO_PHASES
    dataset = PhaseDataset("autolaparo", root, phases, [],
                           errors=[] if errors is None else errors)
    videos_dir = root / "videos"
    for annotation in sorted((root / "labels").glob("label_*.txt")):
        match = AUTOLAPARO_LABEL.match(annotation.stem)
        if not match:
            report(errors, annotation, "not an AutoLaparo label file name (label_NN.txt)")
            continue
        name = match.group(1)
        try:
            video = find_video(videos_dir, name) if videos_dir.is_dir() else None
            track = read_video_track(annotation, video, need_videos, phases, 1.0,
                                     first_frame=1, index_base=1)
        except AnnotationError as exc:
            report(errors, exc.path, exc.reason)
            continue
        dataset.videos.append(PhaseVideo(name, int(name), video, track, annotation))
    check_orphan_videos(dataset, videos_dir, {v.name for v in dataset.videos},
                        re.compile(r"^\d+$"))
    return dataset


def read_segments_dataset(root: Path, need_videos: bool = True, phases: tuple[str, ...] = (),
                          errors: list[dict[str, str]] | None = None) -> PhaseDataset:
    """A ``segments.csv`` (or ``root`` itself a CSV) with its videos under ``videos/`` or
    beside it. Phases: ``phases`` when given, else in order of first appearance."""
    csv_path = root if root.suffix == ".csv" else root / "segments.csv"
    base = csv_path.parent
    videos_dir = base / "videos" if (base / "videos").is_dir() else base
    tracks, names = read_segments(csv_path, phases, errors)
    dataset = PhaseDataset("segments", base, names, [], errors=[] if errors is None else errors)
    for name, (track, split) in tracks.items():
        stem = Path(name).stem if Path(name).suffix.lower() in VIDEO_SUFFIXES else name
        video = find_video(videos_dir, name) or find_video(videos_dir, stem)
        try:
            track = fit_to_video(track, csv_path, video_timing(csv_path, video, need_videos)[1],
                                 1.0)
        except AnnotationError as exc:
            report(errors, f"{csv_path} (video {name})", exc.reason)
            continue
        number = int(m.group(0)) if (m := re.search(r"\d+", stem)) else None
        dataset.videos.append(PhaseVideo(stem, number, video, track, csv_path, split=split))
    return dataset


READERS = {"cholec80": read_cholec80, "autolaparo": read_autolaparo,
           "segments": read_segments_dataset}


def read_phase_dataset(root: str | Path, layout: str = "auto", need_videos: bool = True,
                       phases: tuple[str, ...] = (),
                       errors: list[dict[str, str]] | None = None) -> PhaseDataset:
    """Read a phase dataset.

    Args:
        root: the dataset folder (or a segments CSV).
        layout: ``auto`` (detected) or one of :data:`LAYOUTS`.
        need_videos: an annotation whose video is missing is an error (``False`` when scoring
            prediction files, which need no video).
        phases: the phase names in index order (default: the layout's own; ``segments``: in
            order of first appearance).
        errors: collect bad annotations here instead of raising on the first one.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: phase dataset not found")
    layout = detect_layout(root) if layout == "auto" else layout
    if layout not in READERS:
        raise ValueError(f"unknown phase layout {layout!r}; choose auto or one of {LAYOUTS}")
    dataset = READERS[layout](root, need_videos, tuple(phases), errors)
    if not dataset.videos and errors is None:
        raise AnnotationError(root, f"no annotated videos found ({layout} layout)")
    return dataset


def phase_durations(video: PhaseVideo, phases: tuple[str, ...]) -> dict[str, float]:
    """Seconds of each phase in ``video`` (every phase listed, 0 where absent)."""
    counts = np.bincount(video.phases.labels, minlength=len(phases))
    return {name: float(counts[i] / video.phases.rate) for i, name in enumerate(phases)}
