"""Options shared by the inference commands (extract, predict, attention)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_io_args(p: argparse.ArgumentParser, checkpoint_help: str) -> None:
    """``INPUT...``, ``--checkpoint`` and ``--output``."""
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                   help="video files, folders (recursive), frame folders or manifests")
    p.add_argument("--checkpoint", required=True, type=Path, help=checkpoint_help)
    p.add_argument("--output", required=True, type=Path, help="output folder")


def add_window_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--num-frames", type=int, default=None, metavar="T",
                   help="frames per window (default: the checkpoint's, 8 for Endo-FM)")
    p.add_argument("--frame-step", default=None, metavar="R",
                   help="step between a window's frames, in frames (32) or seconds (1.07s); "
                        "default 32 frames at 30 fps, rescaled to the video's frame rate")
    p.add_argument("--stride", default=None, metavar="S",
                   help="step between window starts, in frames or seconds (2s); default T*R")


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


def report_errors(errors: list[dict]) -> int:
    """Print one ``error: PATH: REASON`` line per failed video; the exit status (1 if any)."""
    for err in errors:
        print(f"  error: {err['path']}: {err['reason']}")
    return 1 if errors else 0
