"""Options shared by the inference commands (extract, predict, attention): one name and one
meaning each, wherever they appear."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_io_args(p: argparse.ArgumentParser, checkpoint_help: str) -> None:
    """``INPUT...``, ``--checkpoint``, ``--num-heads`` and ``--output``."""
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                   help="video files, folders (recursive), frame folders or manifests")
    p.add_argument("--checkpoint", required=True, type=Path, help=checkpoint_help)
    p.add_argument("--num-heads", type=int, default=None, metavar="N",
                   help="attention heads, for released files of a width no named config has "
                        "(released files do not record it)")
    p.add_argument("--output", required=True, type=Path,
                   help="output folder (a re-run skips finished videos; other settings are "
                        "refused)")


def add_window_args(p: argparse.ArgumentParser, num_frames: bool = True,
                    frame_step_help: str | None = None, stride_help: str | None = None) -> None:
    """``--num-frames`` (where the model's frame count may change), ``--frame-step``,
    ``--stride`` and ``--fps``."""
    if num_frames:
        p.add_argument("--num-frames", type=int, default=None, metavar="T",
                       help="frames per window (default: the checkpoint's, 8 for Endo-FM)")
    p.add_argument("--frame-step", default=None, metavar="R",
                   help=frame_step_help or "step between a window's frames, in frames (32) or "
                        "seconds (1.07s); default 32 frames at 30 fps, rescaled to the video's "
                        "frame rate")
    p.add_argument("--stride", default=None, metavar="S",
                   help=stride_help or "step between window starts, in frames or seconds "
                        "(2s); default T*R (adjacent windows)")
    p.add_argument("--fps", type=float, default=None,
                   help="frame rate of frame folders (default 30; video files carry their own; "
                        "a manifest's fps column wins for its rows)")


def add_runtime_args(p: argparse.ArgumentParser, batch_size: int = 8,
                     compile: bool = False) -> None:
    """Batch, workers, device and precision; ``--compile`` only where the command compiles its
    model (``compile``)."""
    p.add_argument("--batch-size", type=int, default=batch_size,
                   help=f"windows per forward (default {batch_size})")
    p.add_argument("--workers", type=int, default=2,
                   help="DataLoader decoding workers (default 2; 0 decodes in this process)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                   help="auto (default): bf16 where the device has native bf16, else fp32")
    if compile:
        p.add_argument("--compile", action="store_true",
                       help="run the backbone through torch.compile (inductor, weights frozen)")


def folder_fps(args: argparse.Namespace) -> float:
    """``--fps``, or the default rate of frame folders."""
    from endofm.inference.windowed import DEFAULT_FOLDER_FPS

    return DEFAULT_FOLDER_FPS if args.fps is None else args.fps


def report_errors(errors: list[dict]) -> int:
    """Print one ``error: PATH: REASON`` line per failed video; the exit status (1 if any)."""
    for err in errors:
        print(f"  error: {err['path']}: {err['reason']}")
    return 1 if errors else 0
