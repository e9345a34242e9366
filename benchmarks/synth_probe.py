"""Synthetic probe tasks on which a randomly initialised backbone is weak (the data of
``ssl_probe.py``; benchmark code, not part of the package).

``motion``: the label is the camera's motion — advancing into the colon (the view zooms in,
label 1) or withdrawing (it zooms out, label 0). Every single frame of both classes comes from
the same distribution (a reversed advancing video is a withdrawing one), so only the temporal
order tells the classes apart. All videos share one look (mucosa statistics, lighting, no
polyp): what stays the same across the crops of one video — what self-supervised matching of
its views can latch on to — is its motion, not its appearance.

``polyp``: the label is a polyp (1) or none (0), under strong per-video lighting and colour
changes (gain, gamma, mucosa tint, vignette, lumen size) and a random advancing or withdrawing
camera.

``polyp_drift``: a polyp (1) or none (0) under lighting and colour that drift *within* each
video (per-frame channel gains and gamma blending from one random look to another, as an
endoscope's auto-exposure does), so no single look belongs to a video: matching its views
rewards what persists (the polyp), not its colours.

``texture``: the mucosa's vessels are dense and fine (1) or sparse and coarse (0), with the same
colours and base noise, under the drifting lighting of ``polyp_drift`` and a random advancing or
withdrawing camera. A hand-made detail statistic (mean absolute Laplacian) separates the
classes (k-NN accuracy about 0.95 on 48 + 48 videos, seed 0); a randomly initialised tiny
backbone's CLS features do not (k-NN and linear probe about 0.5), and the tiny backbone does not
learn it even when trained with the labels (validation accuracy 0.44-0.50, seed 0; README).

``synthesize_probe_task(out, seed, task)`` writes ``out/pretrain/*.mp4`` (unlabelled videos for
pre-training) and ``out/probe/`` in the PolypDiag layout (``videos/`` + ``splits/{train,val}.txt``,
balanced) with ``factors.csv`` (every probe video's nuisance factors, :data:`FACTORS`), all
rendered by :mod:`endofm.data.synth_render`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from endofm.data.synth import ENCODER_OPTIONS
from endofm.data.synth_render import (
    ADENOMATOUS,
    DEFAULT_STYLE,
    HYPERPLASTIC,
    TEXTURE_SIZE,
    Camera,
    Style,
    random_scene,
    render_frame,
    smooth_noise,
)
from endofm.data.video import VideoWriter
from endofm.utils.io import atomic_write_text

TASKS = ("motion", "polyp", "polyp_drift", "texture")
# per-video factors other than the label, in probe/factors.csv (what else could features encode?)
FACTORS = ("brightness", "vignette", "lumen_size", "advancing")


@dataclass(frozen=True)
class ProbeTaskSize:
    pretrain_videos: int = 48
    train_videos: int = 48  # 48 + 48: one video is 0.02 accuracy (24 + 24 gave 0.04 steps)
    val_videos: int = 48
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


def vessel_texture(rng: np.random.Generator, dense: bool) -> np.ndarray:
    """Mucosa float32 ``[S, S, 3]`` in [0, 1] with dense, fine vessels (``dense``) or sparse,
    coarse ones; the same colours and base noise either way."""
    size = TEXTURE_SIZE
    base = 0.6 * smooth_noise(rng, size, 8) + 0.4 * smooth_noise(rng, size, 32)
    ridge = smooth_noise(rng, size, 40 if dense else 10)
    vessels = np.clip(1.0 - np.abs(ridge - 0.5) / (0.04 if dense else 0.06), 0.0, 1.0)
    colour = np.array(DEFAULT_STYLE.mucosa, dtype=np.float32)
    texture = colour * (0.75 + 0.35 * base[..., None])
    vessel = np.array(DEFAULT_STYLE.vessel, dtype=np.float32)
    texture = texture * (1 - 0.8 * vessels[..., None]) + 0.8 * vessels[..., None] * vessel
    return np.clip(texture, 0.0, 1.0).astype(np.float32)


def drifting_look(rng: np.random.Generator, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Lighting and colour that drift within the video: per-frame channel gains ``[T, 3]`` and
    gamma ``[T]``, a smooth (cosine) blend from one random look to another, each look an
    overall gain 0.55-1.3, per-channel gains 0.75-1.25 and a gamma 0.7-1.45."""

    def look() -> tuple[np.ndarray, float]:
        gain = rng.uniform(0.55, 1.3) * rng.uniform(0.75, 1.25, size=3)
        return gain.astype(np.float32), float(rng.uniform(0.7, 1.45))

    (g0, gamma0), (g1, gamma1) = look(), look()
    t = (0.5 - 0.5 * np.cos(np.pi * np.linspace(0.0, 1.0, num_frames)))[:, None]
    gains = (1 - t) * g0 + t * g1
    gammas = (1 - t[:, 0]) * gamma0 + t[:, 0] * gamma1
    return gains.astype(np.float32), gammas.astype(np.float32)


def apply_look(frame: np.ndarray, gain: np.ndarray, gamma: float) -> np.ndarray:
    """uint8 ``[H, W, 3]`` frame under channel ``gain`` ``[3]`` and ``gamma``."""
    x = (frame.astype(np.float32) / 255.0) ** gamma * gain
    return (np.clip(x, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def write_task_video(path: Path, task: str, label: int, size: ProbeTaskSize,
                     rng: np.random.Generator) -> dict[str, float]:
    """One video of ``task`` with ``label`` (see the module docstring); returns its nuisance
    factors (:data:`FACTORS`): mean brightness of the written frames in [0, 1], vignette
    strength, lumen size and whether the camera advances (1) or withdraws (0)."""
    if task == "motion":
        scene = random_scene(rng, [], size.size)
        advancing = bool(label)
    elif task == "polyp":
        polyps = [int(rng.choice([ADENOMATOUS, HYPERPLASTIC]))] if label else []
        scene = random_scene(rng, polyps, size.size, random_look(rng))
        advancing = bool(rng.random() < 0.5)
    elif task == "texture":
        shape = random_look(rng)
        style = Style(vignette=shape.vignette, lumen_size=shape.lumen_size)
        scene = replace(random_scene(rng, [], size.size, style),
                        texture=vessel_texture(rng, bool(label)))
        advancing = bool(rng.random() < 0.5)
    else:
        polyps = [int(rng.choice([ADENOMATOUS, HYPERPLASTIC]))] if label else []
        shape = random_look(rng)
        style = Style(vignette=shape.vignette, lumen_size=shape.lumen_size)
        scene = random_scene(rng, polyps, size.size, style)
        advancing = bool(rng.random() < 0.5)
    camera = motion_camera(rng, size.frames, size.size, advancing)
    look = drifting_look(rng, size.frames) if task in ("polyp_drift", "texture") else None
    brightness = 0.0
    with VideoWriter(path, size.fps, size.size, size.size, options=ENCODER_OPTIONS) as writer:
        for i in range(size.frames):
            frame = render_frame(scene, camera, i, size.size, size.size)[0]
            frame = frame if look is None else apply_look(frame, look[0][i], look[1][i])
            writer.write(frame)
            brightness += float(frame.mean()) / 255.0 / size.frames
    return {"brightness": brightness, "vignette": scene.style.vignette,
            "lumen_size": scene.style.lumen_size, "advancing": float(advancing)}


def synthesize_probe_task(out_dir: str | Path, seed: int = 0, task: str = "motion",
                          size: ProbeTaskSize = ProbeTaskSize()) -> dict[str, Path]:
    """Write the task under ``out_dir``; returns ``{"pretrain", "probe"}`` paths."""
    if task not in TASKS:
        raise ValueError(f"unknown probe task {task!r}; choose one of {TASKS}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0 (a NumPy seed), got {seed}")
    out = Path(out_dir)
    counts = {"pretrain": size.pretrain_videos, "train": size.train_videos,
              "val": size.val_videos}
    index = 0
    factor_rows = [",".join(("video", "split", "label", *FACTORS)) + "\n"]
    for part, count in counts.items():
        folder = out / "pretrain" if part == "pretrain" else out / "probe" / "videos"
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for k in range(count):
            rng = np.random.default_rng(np.random.SeedSequence([seed, 7, index]))
            label = k % 2
            name = f"{part}_{k:03d}.mp4"
            factors = write_task_video(folder / name, task, label, size, rng)
            lines.append(f"{name},{label}\n")
            if part != "pretrain":
                values = ",".join(f"{factors[f]:.6g}" for f in FACTORS)
                factor_rows.append(f"{name},{part},{label},{values}\n")
            index += 1
        if part != "pretrain":
            atomic_write_text("".join(lines), out / "probe" / "splits" / f"{part}.txt")
    atomic_write_text("".join(factor_rows), out / "probe" / "factors.csv")
    return {"pretrain": out / "pretrain", "probe": out / "probe"}
