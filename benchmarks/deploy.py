"""Deployment speed: per-window latency of PyTorch eager, PyTorch compiled and ONNX Runtime, and
``endofm stream`` on a 25 fps file at real-time pace.

    python benchmarks/deploy.py [--sizes tiny small base] [--repeats 3] [--warmup 1]
        [--stream-size tiny] [--stream-seconds 8] [--no-stream] [--device cpu]

Latency: one window (batch 1, 8 frames at 224x224) through the backbone graph that
``endofm export`` writes, in fp32; median and minimum of ``--repeats`` calls after
``--warmup``, the three runtimes timed in turn (one call of each per round). Compiled:
:func:`endofm.runner.compile.maybe_compile` (``endofm extract --compile``). ONNX Runtime: the
file :func:`endofm.deploy.export.export_onnx` writes (parity checked), run by
:class:`endofm.deploy.runtime.OnnxModel` on the same number of threads as PyTorch. Stream: an
untrained classifier of ``--stream-size`` on a synthetic 25 fps video played at its frame rate
(:func:`endofm.deploy.live.open_live_run`): decisions per second, dropped windows and the
latency (newest frame available → decision written) p50/p95/p99. On a shared machine check the
load (printed).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from backbone import timed

import endofm
from endofm.data import write_video
from endofm.deploy.export import deploy_graph, export_onnx
from endofm.deploy.live import LiveReport, open_live_run
from endofm.deploy.model import DeployModel, load_deploy_model
from endofm.deploy.runtime import OnnxModel
from endofm.models import save_pretrained
from endofm.runner.compile import maybe_compile
from endofm.tasks.classification.model import VideoClassifier

SIZES = ("tiny", "small", "base")
FRAMES = 8
STREAM_FPS = 25.0


def model_name(size: str) -> str:
    return f"endofm_vit_{size}_patch16"


def deploy_model(size: str, root: Path, **model_overrides: object) -> DeployModel:
    """An untrained backbone of ``size`` (8 frames, 224 px unless overridden) as
    ``endofm export`` loads it."""
    torch.manual_seed(0)
    model = endofm.create_model(model_name(size), num_frames=FRAMES, **model_overrides)
    return load_deploy_model(save_pretrained(model, root / f"backbone_{size}"))


def torch_runner(module: torch.nn.Module) -> Callable[[torch.Tensor], object]:
    def run(clip: torch.Tensor) -> object:
        with torch.inference_mode():
            return module(clip)

    return run


def round_robin(runners: dict[str, Callable[[], object]], warmup: int, repeats: int
                ) -> dict[str, list[float]]:
    """Seconds of ``repeats`` calls of each runner, the runners timed in turn (one call of
    each per round, after ``warmup`` of each), so that a shared host's drifting speed falls on
    all of them alike."""
    device = torch.device("cpu")
    for run in runners.values():
        for _ in range(warmup):
            run()
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            times[name].append(timed(run, device, 0, 1))
    return times


def latency_rows(size: str, root: Path, warmup: int, repeats: int,
                 **model_overrides: object) -> list[tuple[str, ...]]:
    """``(size, runtime, median ms/window, min ms/window, windows/s at the median)`` of eager,
    compiled and ONNX Runtime, timed round-robin."""
    deploy = deploy_model(size, root, **model_overrides)
    clip = torch.randn(1, 3, deploy.num_frames, deploy.height, deploy.width)
    graph = deploy_graph(deploy).eval()
    onnx = OnnxModel(export_onnx(deploy, root / f"{size}.onnx").path, device="cpu")
    runners = {"PyTorch eager": torch_runner(graph),
               "PyTorch compiled": torch_runner(maybe_compile(graph, True)),
               "ONNX Runtime (CPU)": lambda c: onnx.run(c.numpy())}
    times = round_robin({name: (lambda run=run: run(clip)) for name, run in runners.items()},
                        warmup, repeats)
    rows = []
    for runtime, seconds in times.items():
        median = sorted(seconds)[len(seconds) // 2]
        rows.append((size, runtime, f"{median * 1e3:.1f}", f"{min(seconds) * 1e3:.1f}",
                     f"{1 / median:.2f}"))
    return rows


def stream_video(path: Path, seconds: float, height: int = 240, width: int = 320) -> Path:
    """A synthetic 25 fps video: a bright square moving over a noisy background."""
    rng = np.random.default_rng(0)
    n = int(seconds * STREAM_FPS)
    frames = rng.integers(0, 60, (n, height, width, 3), dtype=np.uint8)
    for i in range(n):
        x = (4 * i) % (width - 40)
        frames[i, 60:100, x:x + 40] = (230, 120 + (i * 7) % 100, 40)
    return write_video(path, frames, fps=STREAM_FPS)


def stream_report(size: str, root: Path, seconds: float, device: str = "cpu",
                  precision: str = "fp32", **model_overrides: object) -> LiveReport:
    """``endofm stream`` of an untrained classifier of ``size`` on a ``seconds``-long 25 fps
    file at real-time pace."""
    torch.manual_seed(0)
    backbone = endofm.create_model(model_name(size), num_frames=FRAMES, **model_overrides)
    checkpoint = VideoClassifier(backbone).save_pretrained(root / f"classifier_{size}")
    video = stream_video(root / "stream.mp4", seconds)
    run = open_live_run(checkpoint, str(video), root / f"stream_{size}", realtime=True,
                        device=device, precision=precision)
    return run.run()


def stream_row(size: str, report: LiveReport) -> tuple[str, ...]:
    lat = report.latency_ms
    cells = [f"{lat[k]:.1f}" if k in lat else "n/a" for k in ("p50", "p95", "p99")]
    return (size, f"{report.fps:.0f}", str(report.frames), str(report.decisions),
            str(report.dropped), f"{report.decisions_per_s:.2f}", *cells)


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(r) + " |" for r in rows)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", choices=SIZES, default=list(SIZES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--stream-size", choices=SIZES, default="tiny")
    parser.add_argument("--stream-seconds", type=float, default=8.0)
    parser.add_argument("--no-stream", action="store_true")
    args = parser.parse_args()
    load = f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a"
    print(f"# endofm deploy benchmark: CPU, {torch.get_num_threads()} threads, torch "
          f"{torch.__version__}, 1-min load {load}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = [r for size in args.sizes
                for r in latency_rows(size, root, args.warmup, args.repeats)]
        print("\n".join(table(("size", "runtime", "median ms/window", "min ms/window",
                               "windows/s"), rows)), flush=True)
        if not args.no_stream:
            report = stream_report(args.stream_size, root, args.stream_seconds)
            print()
            print("\n".join(table(("stream size", "fps", "frames", "decisions", "dropped",
                                   "decisions/s", "p50 ms", "p95 ms", "p99 ms"),
                                  [stream_row(args.stream_size, report)])))


if __name__ == "__main__":
    main()
