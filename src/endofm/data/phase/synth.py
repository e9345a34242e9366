"""Small synthetic procedures in the Cholec80 layout, for tests and the phase benchmark.

Every procedure runs the same phases in the same order, each for a random duration; each
phase has a *look* (a colour and a drifting stripe pattern, drawn per seed) and two phases
share one look (``alike``), so that frame by frame they cannot be told apart and only their
place in the order can. Tools appear as bright bars with phase-dependent probabilities and
are written as Cholec80 tool annotations (one row per second).
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from endofm.data.phase.datasets import CHOLEC80_PHASES
from endofm.data.video import write_video
from endofm.utils.io import atomic_write_text

TOOLS = ("Grasper", "Bipolar", "Hook", "Scissors", "Clipper", "Irrigator", "SpecimenBag")
# per phase: the probability of each tool in a second (the tools a phase uses)
TOOL_USE = {0: {0: 0.3}, 1: {0: 0.8, 2: 0.7}, 2: {0: 0.6, 4: 0.9}, 3: {0: 0.8, 2: 0.7},
            4: {6: 0.9}, 5: {5: 0.8}, 6: {0: 0.9, 6: 0.5}}


@dataclass(frozen=True)
class Look:
    colour: tuple[float, float, float]  # RGB in [0, 1]
    angle: float  # stripe direction, radians
    frequency: float  # stripes per frame width


@dataclass(frozen=True)
class ProcedureSpec:
    """``num_phases`` phases in order, ``alike`` sharing a look, each ``phase_s`` seconds
    (min, max) long, rendered at ``size`` px and ``fps``."""

    num_phases: int = 4
    alike: tuple[int, int] = (1, 3)
    phase_s: tuple[float, float] = (8.0, 16.0)
    size: int = 32
    fps: float = 5.0
    noise: float = 0.08


def random_looks(rng: np.random.Generator, spec: ProcedureSpec) -> list[Look]:
    """One look per phase, hues spread round the wheel from a random start; the ``alike``
    phases get the same look."""
    start = rng.uniform(0, 1)
    looks = []
    for k in range(spec.num_phases):
        hue = (start + k / spec.num_phases) % 1.0
        colour = colorsys.hsv_to_rgb(hue, rng.uniform(0.45, 0.8), rng.uniform(0.55, 0.85))
        looks.append(Look(colour, float(rng.uniform(0, np.pi)), float(rng.uniform(1.5, 4))))
    looks[spec.alike[1]] = looks[spec.alike[0]]
    return looks


def render_frames(look: Look, tools: np.ndarray, start_frame: int, size: int, fps: float,
                  noise: float, rng: np.random.Generator) -> np.ndarray:
    """Frames of one look with the tools ``tools`` uint8 ``[T, 7]`` drawn → uint8
    ``[T, size, size, 3]``."""
    t = (start_frame + np.arange(len(tools)))[:, None, None] / fps
    y, x = np.mgrid[0:size, 0:size] / size
    u = x * np.cos(look.angle) + y * np.sin(look.angle)
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * (look.frequency * u[None] - 0.3 * t))
    shade = 0.55 + 0.45 * stripes
    frames = shade[..., None] * np.asarray(look.colour)[None, None, None]
    frames = frames + rng.normal(0, noise, size=frames.shape)
    bar = max(2, size // 8)
    for k in range(tools.shape[1]):
        on = tools[:, k].astype(bool)
        if on.any():
            col = (k * size) // tools.shape[1]
            frames[on, size // 3:, col:col + bar] = 0.95
    return (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)


def procedure_labels(rng: np.random.Generator, spec: ProcedureSpec) -> np.ndarray:
    """The phase of every second: each phase in order for a random whole number of seconds
    → int64 ``[seconds]``."""
    lo, hi = spec.phase_s
    lengths = rng.integers(round(lo), round(hi) + 1, size=spec.num_phases)
    return np.repeat(np.arange(spec.num_phases), lengths)


def tool_seconds(rng: np.random.Generator, seconds: np.ndarray) -> np.ndarray:
    """Tool presence per second from :data:`TOOL_USE` → uint8 ``[seconds, 7]``."""
    out = np.zeros((len(seconds), len(TOOLS)), dtype=np.uint8)
    for i, phase in enumerate(seconds):
        for tool, p in TOOL_USE[int(phase)].items():
            out[i, tool] = rng.uniform() < p
    return out


def write_procedure(root: Path, name: str, looks: list[Look], spec: ProcedureSpec,
                    rng: np.random.Generator) -> int:
    """One procedure: its video, phase file (a row per frame) and tool file (a row per
    second); returns its length in seconds."""
    seconds = procedure_labels(rng, spec)
    tools = tool_seconds(rng, seconds)
    per = round(spec.fps)
    frame_phase = np.repeat(seconds, per)
    frame_tools = np.repeat(tools, per, axis=0)
    frames = np.concatenate([
        render_frames(looks[p], frame_tools[s:e], s, spec.size, spec.fps, spec.noise, rng)
        for p, s, e in _runs(frame_phase)])
    write_video(root / "videos" / f"{name}.mp4", frames, spec.fps)
    rows = "".join(f"{i}\t{CHOLEC80_PHASES[p]}\n" for i, p in enumerate(frame_phase))
    atomic_write_text("Frame\tPhase\n" + rows,
                      root / "phase_annotations" / f"{name}-phase.txt")
    tool_rows = "".join(f"{i * per}\t" + "\t".join(map(str, row)) + "\n"
                        for i, row in enumerate(tools))
    atomic_write_text("Frame\t" + "\t".join(TOOLS) + "\n" + tool_rows,
                      root / "tool_annotations" / f"{name}-tool.txt")
    return len(seconds)


def _runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    cuts = [0, *(np.flatnonzero(np.diff(labels)) + 1).tolist(), len(labels)]
    return [(int(labels[s]), s, e) for s, e in zip(cuts, cuts[1:], strict=False)]


def synth_procedures(out: str | Path, num_videos: int = 6, seed: int = 0,
                     spec: ProcedureSpec = ProcedureSpec()) -> Path:
    """Write ``num_videos`` procedures (``video01``, …) in the Cholec80 layout under ``out``.

    Args:
        out: the dataset folder to create.
        num_videos: procedures to render.
        seed: draws the looks and every procedure.
        spec: phases, durations, frame size and rate.
    """
    if not 2 <= spec.num_phases <= len(CHOLEC80_PHASES):
        raise ValueError(f"num_phases must be 2–{len(CHOLEC80_PHASES)}, got {spec.num_phases}")
    root = Path(out)
    rng = np.random.default_rng(seed)
    looks = random_looks(rng, spec)
    for k in range(num_videos):
        write_procedure(root, f"video{k + 1:02d}", looks, spec, np.random.default_rng(
            [seed, k]))
    return root


def sample_procedures(out_dir: str | Path, seed: int = 0) -> Path:
    """The tests' small phase dataset under ``out_dir``: four 32 px procedures at 5 fps of
    three phases, 4–6 s each (the first and last alike), in the Cholec80 layout."""
    spec = ProcedureSpec(num_phases=3, alike=(0, 2), phase_s=(4, 6), size=32, fps=5.0)
    return synth_procedures(out_dir, num_videos=4, seed=seed, spec=spec)
