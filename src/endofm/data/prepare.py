"""``prepare-pretrain``: a pre-training manifest from folders of videos of many sources.

Each source folder (``NAME=DIR``, or ``DIR`` named after its folder) is scanned recursively for
video files and frame folders. Every video is cut into consecutive ``clip_seconds`` windows (the
release's 5 s clips; a shorter remainder is dropped) listed as ``(path, start, end, source)``
rows without re-encoding, or, with ``transcode=True``, written as MP4 clips with short side
``short_side`` like the release. The first and last frame of every window is decoded before the
row is written, so every row of the manifest decodes. Whatever is left out is reported with its
reason: files that are not videos, broken or too-short videos, windows that fail to decode.
The manifest (``manifest.csv``) and the report (``prepare_report.json``) are written atomically.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from endofm.data.manifest import ClipItem, scan_videos, unsupported_files, write_manifest
from endofm.data.video import (
    VideoError,
    VideoSource,
    VideoWriter,
    check_folder_fps,
    open_video,
)
from endofm.utils.io import atomic_write_json
from endofm.utils.progress import progress as progress_bar


@dataclass
class PrepareReport:
    """What ``prepare_pretrain`` wrote and what it left out (``{"path", "reason"}`` dicts)."""

    manifest: str
    num_videos: int = 0
    num_clips: int = 0
    sources: dict[str, int] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)


def parse_source(spec: str | Path) -> tuple[str, Path]:
    """``"NAME=DIR"`` → (NAME, DIR); a plain ``DIR`` is named after its folder."""
    text = str(spec)
    name, sep, path = text.partition("=")
    if sep and name and not Path(text).exists():
        return name, Path(path)
    return Path(text).resolve().name, Path(text)


def clip_windows(num_frames: int, fps: float, clip_seconds: float) -> list[tuple[int, int]]:
    """Consecutive ``[first, stop)`` frame windows of ``clip_seconds``; the remainder is dropped."""
    length = max(1, round(clip_seconds * fps))
    return [(k * length, (k + 1) * length) for k in range(num_frames // length)]


def _verified_windows(video: VideoSource, clip_seconds: float,
                      skipped: list[dict[str, str]]) -> list[tuple[int, int]]:
    windows = clip_windows(video.num_frames, video.fps, clip_seconds)
    if not windows:
        skipped.append({"path": str(video.path), "reason": (
            f"too short: {video.num_frames / video.fps:.2f} s < {clip_seconds} s clip")})
    good = []
    for first, stop in windows:
        try:
            video.read([first])
            video.read([stop - 1])
            good.append((first, stop))
        except VideoError as error:
            skipped.append({"path": str(video.path), "reason": (
                f"clip {first / video.fps:.2f}-{stop / video.fps:.2f} s left out: {error.reason}")})
    return good


def _transcode(video: VideoSource, windows: list[tuple[int, int]], out_stem: Path,
               short_side: int) -> list[Path]:
    """Write each window as an MP4 (short side ``short_side``, even size); returns the paths."""
    paths = []
    for k, (first, stop) in enumerate(windows):
        frames = video.read(range(first, stop), short_side=short_side)
        height, width = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2
        path = out_stem.with_name(f"{out_stem.name}_{k:04d}.mp4")
        part = path.with_name(f".{path.stem}.part.mp4")
        with VideoWriter(part, video.fps, height, width) as writer:
            for frame in frames:
                writer.write(frame[:height, :width])
        os.replace(part, path)
        paths.append(path)
    return paths


def _prepare_video(path: Path, source: str, root: Path, out_dir: Path, clip_seconds: float,
                   transcode: bool, short_side: int, folder_fps: float,
                   skipped: list[dict[str, str]]) -> list[ClipItem]:
    try:
        video = open_video(path, folder_fps)
    except VideoError as error:
        skipped.append({"path": error.path, "reason": error.reason})
        return []
    windows = _verified_windows(video, clip_seconds, skipped)
    if not transcode:
        fps = video.fps if path.is_dir() else None  # a frame folder's rate goes with it
        return [ClipItem(path, first / video.fps, stop / video.fps, source=source, fps=fps)
                for first, stop in windows]
    stem = out_dir / "clips" / source / path.relative_to(root).with_suffix("")
    try:
        clips = _transcode(video, windows, stem, short_side)
    except VideoError as error:
        skipped.append({"path": error.path, "reason": f"transcoding failed: {error.reason}"})
        return []
    return [ClipItem(p, source=source) for p in clips]


def prepare_pretrain(sources: list[str | Path], out_dir: str | Path, clip_seconds: float = 5.0,
                     transcode: bool = False, short_side: int = 256, folder_fps: float = 30.0,
                     progress: bool = True) -> PrepareReport:
    """Build ``out_dir/manifest.csv`` from ``sources``; returns the report (also saved as JSON)."""
    if clip_seconds <= 0:
        raise ValueError(f"clip_seconds must be positive, got {clip_seconds}")
    check_folder_fps(folder_fps)
    if transcode and short_side < 2:
        raise ValueError(f"short_side (of the transcoded clips) must be at least 2 pixels, "
                         f"got {short_side}")
    out_dir = Path(out_dir)
    report = PrepareReport(manifest=str(out_dir / "manifest.csv"))
    items: list[ClipItem] = []
    named = [parse_source(spec) for spec in sources]
    names = [name for name, _ in named]
    if len(set(names)) != len(names):
        raise ValueError(f"source names must differ (use NAME=DIR): {names}")
    for name, root in named:
        videos = scan_videos(root)
        report.skipped += [{"path": str(p), "reason": "not a video file or frame folder"}
                           for p in unsupported_files(root, videos)]
        before = len(items)
        for path in progress_bar(videos, desc=f"prepare {name}", unit="video",
                                 enabled=progress):
            clips = _prepare_video(path, name, root, out_dir, clip_seconds, transcode,
                                   short_side, folder_fps, report.skipped)
            report.num_videos += bool(clips)
            items += clips
        report.sources[name] = len(items) - before
    report.num_clips = len(items)
    if not items:
        atomic_write_json(asdict(report), out_dir / "prepare_report.json")
        raise ValueError(f"no usable clips in {[str(s) for s in sources]} "
                         f"({len(report.skipped)} skipped; see {out_dir}/prepare_report.json)")
    write_manifest(items, out_dir / "manifest.csv")
    atomic_write_json(asdict(report), out_dir / "prepare_report.json")
    return report
