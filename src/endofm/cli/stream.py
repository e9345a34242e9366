"""``endofm stream``: live inference on a video file, a capture device or a network stream."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stream", help="live inference on a file, capture device or RTSP/HTTP stream",
        description="Run a fine-tuned model (or its ONNX export, --runtime onnx) on a live "
                    "source. Every decision uses the causal window ending at the newest frame "
                    "and is written to DIR/decisions.jsonl as it is made; when the model is "
                    "slower than the feed, frames are dropped (counted) instead of queued. At "
                    "the end or on Ctrl-C: latency p50/p95/p99, decisions per second and "
                    "frames dropped, printed and in DIR/summary.json.")
    p.add_argument("source", metavar="SOURCE",
                   help="a video file, a capture device (/dev/video0) or an RTSP/HTTP URL")
    p.add_argument("--checkpoint", required=True, type=Path,
                   help="a directory written by `endofm finetune`, or (--runtime onnx) a file "
                        "written by `endofm export`")
    p.add_argument("--output", required=True, type=Path, help="output folder")
    p.add_argument("--runtime", choices=("torch", "onnx"), default="torch",
                   help="PyTorch (default) or ONNX Runtime")
    p.add_argument("--realtime", dest="realtime", action="store_true", default=True,
                   help="play a file at its frame rate (the default); devices and streams "
                        "run at their own pace")
    p.add_argument("--unpaced", dest="realtime", action="store_false",
                   help="play a file as fast as it decodes")
    p.add_argument("--overlay", action="store_true",
                   help="also write DIR/overlay.mp4 (each frame with the newest decision)")
    p.add_argument("--every", type=int, default=1, metavar="N",
                   help="offer a window every N frames (default 1: every frame)")
    p.add_argument("--threshold", type=float, default=None,
                   help="classification/detection decision threshold (default: the model's)")
    p.add_argument("--device", default="auto",
                   help="auto | cpu | cuda | cuda:N (onnx: auto | cpu | cuda | tensorrt)")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                   help="PyTorch precision (default auto: bf16 where native)")
    p.set_defaults(func=run_stream)


def run_stream(args: argparse.Namespace) -> int:
    import signal
    import threading

    from endofm.deploy.live import open_live_run

    stop = threading.Event()
    run = open_live_run(args.checkpoint, args.source, args.output, runtime=args.runtime,
                        realtime=args.realtime, overlay=args.overlay, device=args.device,
                        precision=args.precision, threshold=args.threshold, stop=stop,
                        decide_every=args.every)
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        report = run.run()
    finally:
        signal.signal(signal.SIGINT, previous)
    for line in report.lines():
        print(line)
    print(f"  wrote {args.output}")
    return 0
