"""Synthetic probe tasks on which a randomly initialised backbone is weak.

``motion``: the label is the camera's motion — advancing into the colon (the view zooms in,
label 1) or withdrawing (it zooms out, label 0). Every single frame of both classes comes from
the same distribution (a reversed advancing video is a withdrawing one), so only the temporal
order tells the classes apart. All videos share one look (mucosa statistics, lighting, no
polyp): what stays the same across the crops of one video — what self-supervised matching of
its views can latch on to — is its motion, not its appearance.

``polyp``: the label is a polyp (1) or none (0), under strong per-video lighting and colour
changes (gain, gamma, mucosa tint, vignette, lumen size) and a random advancing or withdrawing
camera.

``synthesize_probe_task(out, seed, task)`` writes ``out/pretrain/*.mp4`` (unlabelled videos for
pre-training) and ``out/probe/`` in the PolypDiag layout (``videos/`` + ``splits/{train,val}.txt``,
balanced), all rendered by :mod:`endofm.data.synth_render`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from endofm.data.synth import ENCODER_OPTIONS
from endofm.data.synth_render import (
    ADENOMATOUS,
    HYPERPLASTIC,
    Camera,
    Style,
    random_scene,
    render_frame,
)
from endofm.data.video import VideoWriter
from endofm.utils.io import atomic_write_text

TASKS = ("motion", "polyp")


@dataclass(frozen=True)
class ProbeTaskSize:
    pretrain_videos: int = 48
    train_videos: int = 24
    val_videos: int = 24
    frames: int = 48
    size: int = 64
    fps: float = 30.0


def motion_camera(rng: np.random.Generator, num_frames: int, frame_size: int,
                  advancing: bool) -> Camera:
    """Zoom growing (advancing) or shrinking (withdrawing) by a factor of 1.8–2.6 over the
    video, with a slow random drift and roll."""
    t = np.linspace(0.0, 1.0, num_frames, dtype=np.float32)
    ratio = rng.uniform(1.8, 2.6)
    zoom = rng.uniform(0.7, 0.9) * ratio ** (t if advancing else 1.0 - t)
    drift = rng.uniform(-0.1, 0.1, size=2) * frame_size
    start = rng.uniform(-0.1, 0.1, size=2) * frame_size
    roll = rng.uniform(-0.3, 0.3) * t + rng.uniform(-np.pi, np.pi)
    return Camera(tx=(start[0] + drift[0] * t).astype(np.float32),
                  ty=(start[1] + drift[1] * t).astype(np.float32),
                  zoom=zoom.astype(np.float32), angle=roll.astype(np.float32))


def random_look(rng: np.random.Generator) -> Style:
    """Per-video lighting and colour: gain, gamma, a tinted mucosa and vignette strength."""
    mucosa = np.clip(np.array([0.86, 0.48, 0.42]) + rng.uniform(-0.15, 0.15, 3), 0.05, 1.0)
    return Style(mucosa=tuple(float(v) for v in mucosa), gain=float(rng.uniform(0.6, 1.2)),
                 gamma=float(rng.uniform(0.7, 1.4)), vignette=float(rng.uniform(0.2, 0.7)),
                 lumen_size=float(rng.uniform(0.25, 0.5)))


def write_task_video(path: Path, task: str, label: int, size: ProbeTaskSize,
                     rng: np.random.Generator) -> None:
    """One video of ``task`` with ``label`` (see the module docstring)."""
    if task == "motion":
        scene = random_scene(rng, [], size.size)
        advancing = bool(label)
    else:
        polyps = [int(rng.choice([ADENOMATOUS, HYPERPLASTIC]))] if label else []
        scene = random_scene(rng, polyps, size.size, random_look(rng))
        advancing = bool(rng.random() < 0.5)
    camera = motion_camera(rng, size.frames, size.size, advancing)
    with VideoWriter(path, size.fps, size.size, size.size, options=ENCODER_OPTIONS) as writer:
        for i in range(size.frames):
            writer.write(render_frame(scene, camera, i, size.size, size.size)[0])


def synthesize_probe_task(out_dir: str | Path, seed: int = 0, task: str = "motion",
                          size: ProbeTaskSize = ProbeTaskSize()) -> dict[str, Path]:
    """Write the task under ``out_dir``; returns ``{"pretrain", "probe"}`` paths."""
    if task not in TASKS:
        raise ValueError(f"unknown probe task {task!r}; choose one of {TASKS}")
    out = Path(out_dir)
    counts = {"pretrain": size.pretrain_videos, "train": size.train_videos,
              "val": size.val_videos}
    index = 0
    for part, count in counts.items():
        folder = out / "pretrain" if part == "pretrain" else out / "probe" / "videos"
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for k in range(count):
            rng = np.random.default_rng(np.random.SeedSequence([seed, 7, index]))
            label = k % 2
            name = f"{part}_{k:03d}.mp4"
            write_task_video(folder / name, task, label, size, rng)
            lines.append(f"{name},{label}\n")
            index += 1
        if part != "pretrain":
            atomic_write_text("".join(lines), out / "probe" / "splits" / f"{part}.txt")
    return {"pretrain": out / "pretrain", "probe": out / "probe"}
