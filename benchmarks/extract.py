"""``endofm extract`` end to end against the bare backbone, and its memory against video length.

    python benchmarks/extract.py [--minutes 10 1] [--precisions fp32 bf16] [--device auto]
        [--compile]

Makes synthetic 30 fps videos (256 px short side, moving shapes over noise, the encoder's
default GOP) of each length once (cached in ``--cache``), then for each precision:

(a) windows/s of ``endofm extract`` (a separate process: decoding in DataLoader workers, the
    model, the ``.npy`` writes) on the longest video, divided by windows/s of the bare backbone
    forward on pre-decoded tensors with the same settings (goal: >= 0.9), the mean of the bare
    rates timed just before and just after the extract runs, so that a shared host's drifting
    speed counts on both sides of the ratio;
(b) the peak RSS of the extract process on the longest video minus that on the shortest (main
    process and, separately, its largest decoding worker; goal: under 300 MiB).

The backbone is a randomly initialised ViT-B/16 (no download) saved once as a checkpoint.
``--compile`` runs both sides compiled (``endofm extract --compile``; the extract time includes
the compilation).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import endofm
from endofm.data import VideoWriter
from endofm.inference.encoder import VideoEncoder
from endofm.utils.device import resolve_device

FPS = 30
HEIGHT, WIDTH = 256, 320


def synth_video(path: Path, minutes: float) -> Path:
    """A ``minutes``-long 30 fps 256x320 video (written once, frame by frame)."""
    if path.is_file():
        return path
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 50, (64, HEIGHT, WIDTH, 3), dtype=np.uint8)
    tmp = path.with_suffix(".tmp.mp4")
    with VideoWriter(tmp, FPS, HEIGHT, WIDTH, options={"preset": "ultrafast"}) as writer:
        for i in range(int(minutes * 60 * FPS)):
            frame = noise[i % 64].copy()
            x, y = (5 * i) % (WIDTH - 60), (3 * i) % (HEIGHT - 60)
            frame[y:y + 60, x:x + 60] = (220, 120 + i % 100, 60)
            writer.write(frame)
    tmp.rename(path)
    return path


def run_extract(ckpt: Path, video: Path, out: Path, args: argparse.Namespace,
                precision: str) -> dict:
    """Run ``endofm extract`` in a child process; its windows/s and peak RSS (MiB)."""
    # The peak RSS of the extract process itself is VmHWM (Linux): ru_maxrss is kept across
    # execve, so in a child it can be this benchmark's own earlier peak.
    code = (
        "import json, resource, sys, time\n"
        "from endofm.cli.main import main\n"
        "t = time.perf_counter(); rc = main(sys.argv[1:]); dt = time.perf_counter() - t\n"
        "r = resource.getrusage\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')]\n"
        "own = int(hwm[0].split()[1]) / 1024 if hwm else r(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print(json.dumps({'rc': rc, 'seconds': dt, 'self_mib': own,\n"
        "                  'workers_mib': r(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))\n")
    cmd = [sys.executable, "-c", code, "extract", "--checkpoint", str(ckpt), str(video),
           "--output", str(out), "--device", args.device, "--precision", precision,
           "--batch-size", str(args.batch_size), "--workers", str(args.workers), "--quiet",
           *(["--compile"] if args.compile else [])]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    windows = len(np.load(next(out.glob("*.npy")), mmap_mode="r"))
    return result | {"windows": windows, "windows_per_s": windows / result["seconds"]}


def bare_encoder(ckpt: Path, args: argparse.Namespace, precision: str) -> VideoEncoder:
    """The encoder whose bare forward is timed, warmed up (compiled, with ``--compile``)."""
    encoder = VideoEncoder(ckpt, device=args.device, precision=precision,
                           batch_size=args.batch_size, compile=args.compile)
    encoder.forward(bare_clips(args))
    return encoder


def bare_clips(args: argparse.Namespace) -> torch.Tensor:
    """A batch of pre-decoded uint8 windows ``[B, 8, 3, 224, 224]``."""
    return torch.randint(0, 256, (args.batch_size, 8, 3, 224, 224), dtype=torch.uint8)


def bare_rate(encoder: VideoEncoder, args: argparse.Namespace) -> float:
    """Windows/s of the backbone alone on pre-decoded uint8 batches (normalisation included)."""
    clips = bare_clips(args)
    start = time.perf_counter()
    for _ in range(args.repeats):
        encoder.forward(clips)
    return args.repeats * args.batch_size / (time.perf_counter() - start)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, nargs=2, default=[10.0, 1.0],
                   metavar=("LONG", "SHORT"))
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="bare-backbone batches timed")
    p.add_argument("--compile", action="store_true", help="extract and bare forward compiled")
    p.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "endofm_bench")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    args.device = str(resolve_device(args.device))
    args.cache.mkdir(parents=True, exist_ok=True)
    long_v = synth_video(args.cache / f"synth_{args.minutes[0]:g}min.mp4", args.minutes[0])
    short_v = synth_video(args.cache / f"synth_{args.minutes[1]:g}min.mp4", args.minutes[1])
    ckpt = args.cache / "vitb_random"
    if not (ckpt / "config.json").is_file():
        torch.manual_seed(0)
        endofm.save_pretrained(endofm.create_model("endofm_vit_base_patch16"), ckpt)
    print(f"device {args.device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"batch {args.batch_size}, workers {args.workers}, compile {args.compile}, "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"{'prec':>5} {'extract w/s':>11} {'bare w/s':>9} {'(a) ratio':>9} "
          f"{'RSS long':>9} {'RSS short':>9} {'(b) diff':>9} {'worker diff':>11}")
    for precision in args.precisions:
        encoder = bare_encoder(ckpt, args, precision)  # built and compiled once
        before = bare_rate(encoder, args)
        with tempfile.TemporaryDirectory() as tmp:
            long_r = run_extract(ckpt, long_v, Path(tmp) / "long", args, precision)
            short_r = run_extract(ckpt, short_v, Path(tmp) / "short", args, precision)
        bare = (before + bare_rate(encoder, args)) / 2
        del encoder
        print(f"{precision:>5} {long_r['windows_per_s']:>11.3f} {bare:>9.3f} "
              f"{long_r['windows_per_s'] / bare:>9.2f} {long_r['self_mib']:>9.0f} "
              f"{short_r['self_mib']:>9.0f} {long_r['self_mib'] - short_r['self_mib']:>9.0f} "
              f"{long_r['workers_mib'] - short_r['workers_mib']:>11.0f}")
    print(f"windows: {long_r['windows']} (long), {short_r['windows']} (short); "
          f"load at the end {os.getloadavg()[0]:.2f}; peak RSS of this process "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
