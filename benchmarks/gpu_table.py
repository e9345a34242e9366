"""The GPU figures in one table (run through benchmarks/gpu.sh; under 8 minutes on one GPU):

- the ViT-B inference forward of 8x224x224 clips, batch 8, fp16 and bf16 autocast, and of its
  bf16 copy (weights cast once, as a CPU runs bf16);
- the pre-training step at STOMP's setting (batch 8 per GPU, fp16, Endo-FM's recipe: global
  views of 8 and 16 frames), with the release's losses and with the successor's
  (Sinkhorn-Knopp, iBOT, KoLeo); and EndoFM-LV's 32-frame recipe in bf16 with activation
  checkpointing (long clips);
- ``endofm extract`` windows/s (8-frame windows at 224 px, fp16, batch 32) on synthetic
  30-second videos, decoding included;
- per-window latency (batch 1, ViT-B, 8x224x224) of the exported backbone graph: CUDA eager
  with fp16 autocast, ONNX Runtime's CUDA provider (the fp32 graph) and its TensorRT provider
  with fp16 (benchmarks/deploy.py builds the graph); a provider not installed is reported;
- ``endofm stream`` end to end (ViT-B classifier, fp16, a 25 fps file at real-time pace):
  decisions/s and latency p50/p99.

``--dry-run`` runs every row on the CPU at tiny sizes (a 2-block, 96-wide model on 64 px clips,
batch 2, short videos) to check that the script works; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from backbone import peak_memory_mib, timed
from deploy import deploy_model, stream_report
from pretrain_step import make_step, recipe_config

import endofm
from endofm.data.synth import SynthScale, synth_pretrain_videos
from endofm.deploy.export import deploy_graph, export_onnx
from endofm.models import save_pretrained
from endofm.runner.precision import CastInference
from endofm.utils.device import autocast, resolve_device

GIB = 1024.0


def sizes(dry_run: bool) -> dict:
    if dry_run:
        return dict(model=dict(name="endofm_vit_tiny_patch16", embed_dim=96, depth=2,
                               num_heads=4, img_size=64), batch=2, warmup=1, repeats=1,
                    seconds=3.0, video_size=72, windows_batch=4, deploy_size="tiny",
                    deploy_model=dict(embed_dim=96, depth=2, num_heads=4, img_size=64),
                    stream_seconds=2.0)
    return dict(model=dict(name="endofm_vit_base_patch16"), batch=8, warmup=2, repeats=5,
                seconds=30.0, video_size=256, windows_batch=32, deploy_size="base",
                deploy_model={}, stream_seconds=20.0)


def forward_row(precision: str, device: torch.device, s: dict,
                cast: bool = False) -> tuple[str, ...]:
    """The ViT-B forward under ``precision`` autocast; ``cast``: of its bf16 copy
    (:class:`endofm.runner.precision.CastInference`, what a CPU runs in bf16), to decide
    whether CUDA should run it too."""
    model = endofm.create_model(**s["model"]).to(device).eval()
    size = model.img_size
    x = torch.randn(s["batch"], 3, 8, size, size, device=device)
    module = CastInference(model, device.type) if cast else model

    def forward() -> None:
        with torch.inference_mode(), autocast(device, precision):
            module(x)

    seconds = timed(forward, device, s["warmup"], s["repeats"])
    peak = peak_memory_mib(forward, device)
    return (f"forward 8x{size}x{size}, batch {s['batch']}"
            + (", bf16 copy" if cast else ""), precision,
            f"{seconds * 1e3:.1f} ms/batch", f"{s['batch'] / seconds:.1f} clips/s", _gib(peak))


def step_row(recipe: str, frames: int, setting: str, device: torch.device, s: dict,
             dry_run: bool) -> tuple[str, ...]:
    precision, *flags = setting.split("+")
    cfg = recipe_config(recipe, frames, precision, "ckpt" in flags, tiny=dry_run)
    step = make_step(cfg, device, s["batch"])
    seconds = timed(step, device, s["warmup"], s["repeats"])
    peak = peak_memory_mib(step, device)
    return (f"pre-training step, {recipe}, T={frames}, batch {s['batch']}", setting,
            f"{seconds:.3f} s/step", f"{s['batch'] / seconds:.1f} clips/s", _gib(peak))


def extraction_row(device: torch.device, s: dict, dry_run: bool) -> tuple[str, ...]:
    label = f"endofm extract, 8-frame windows, batch {s['windows_batch']}"
    try:
        import endofm.cli.extract  # noqa: F401  (the extract command)
    except ImportError:
        return (label, "fp16", "pending", "endofm extract is not on this branch", "")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        scale = SynthScale(pretrain_videos_per_source=1, pretrain_seconds=s["seconds"],
                           pretrain_size=s["video_size"])
        videos = synth_pretrain_videos(root, 0, scale)
        backbone = save_pretrained(endofm.create_model(**s["model"]), root / "backbone")
        command = [sys.executable, "-m", "endofm.cli.main", "extract", str(videos),
                   "--checkpoint", str(backbone), "--output", str(root / "features"),
                   "--frame-step", "8", "--stride", "8", "--batch-size", str(s["windows_batch"]),
                   "--precision", "fp16", "--device", str(device), "--quiet"]
        start = time.perf_counter()
        subprocess.run(command, check=True)
        seconds = time.perf_counter() - start
        with open(root / "features" / "index.csv") as f:
            windows = sum(1 for _ in csv.DictReader(f))
    return (label, "fp16", f"{seconds:.1f} s for {windows} windows",
            f"{windows / seconds:.1f} windows/s", "")


def eager_latency_row(device: torch.device, s: dict) -> tuple[str, ...]:
    """One window through the exported backbone graph in PyTorch, fp16 autocast."""
    with tempfile.TemporaryDirectory() as tmp:
        deploy = deploy_model(s["deploy_size"], Path(tmp), **s["deploy_model"])
    graph = deploy_graph(deploy).to(device).eval()
    clip = torch.randn(1, 3, deploy.num_frames, deploy.height, deploy.width, device=device)

    def forward() -> None:
        with torch.inference_mode(), autocast(device, "fp16"):
            graph(clip)

    seconds = timed(forward, device, s["warmup"], s["repeats"])
    return (f"deploy: one window, PyTorch eager ({device.type})", "fp16",
            f"{seconds * 1e3:.1f} ms/window", f"{1 / seconds:.1f} windows/s", "")


ORT_PROVIDERS = {"cuda": ("CUDAExecutionProvider", {}, "fp32"),
                 "tensorrt": ("TensorrtExecutionProvider", {"trt_fp16_enable": True}, "fp16")}


def onnx_latency_row(provider: str, s: dict) -> tuple[str, ...]:
    """One window through the exported ONNX file on ONNX Runtime's ``provider``."""
    import onnxruntime as ort

    name, options, precision = ORT_PROVIDERS[provider]
    label = f"deploy: one window, ONNX Runtime {name}"
    if name not in ort.get_available_providers():
        return (label, precision, "not installed", "", "")
    with tempfile.TemporaryDirectory() as tmp:
        deploy = deploy_model(s["deploy_size"], Path(tmp), **s["deploy_model"])
        path = export_onnx(deploy, Path(tmp) / "backbone.onnx").path
        session = ort.InferenceSession(str(path), providers=[(name, options)])
    feed = {session.get_inputs()[0].name:
            torch.randn(1, 3, deploy.num_frames, deploy.height, deploy.width).numpy()}
    seconds = timed(lambda: session.run(None, feed), torch.device("cpu"), s["warmup"],
                    s["repeats"])
    return (label, precision, f"{seconds * 1e3:.1f} ms/window", f"{1 / seconds:.1f} windows/s",
            "")


def stream_fps_row(device: torch.device, s: dict) -> tuple[str, ...]:
    """``endofm stream`` end to end on a 25 fps file at real-time pace."""
    with tempfile.TemporaryDirectory() as tmp:
        report = stream_report(s["deploy_size"], Path(tmp), s["stream_seconds"], str(device),
                               "fp16", **s["deploy_model"])
    lat = report.latency_ms
    return (f"endofm stream, 25 fps file, real time ({report.frames} frames, "
            f"{report.dropped} dropped)", "fp16",
            f"p50 {lat.get('p50', 0):.1f} / p99 {lat.get('p99', 0):.1f} ms",
            f"{report.decisions_per_s:.1f} decisions/s", "")


def _gib(mib: float | None) -> str:
    return "n/a" if mib is None else f"{mib / GIB:.2f} GiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = torch.device("cpu") if args.dry_run else resolve_device(args.device)
    s = sizes(args.dry_run)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"# endofm GPU table on {name}, torch {torch.__version__}"
          + (" (DRY RUN: tiny sizes on the CPU; the figures mean nothing)" if args.dry_run
             else ""))
    rows = [lambda: forward_row("fp16", device, s), lambda: forward_row("bf16", device, s),
            lambda: forward_row("bf16", device, s, cast=True),
            lambda: step_row("endofm", 16, "fp16", device, s, args.dry_run),
            lambda: step_row("endofm+lv", 16, "fp16", device, s, args.dry_run),
            lambda: step_row("lv", 32, "bf16+ckpt", device, s, args.dry_run),
            lambda: extraction_row(device, s, args.dry_run),
            lambda: eager_latency_row(device, s), lambda: onnx_latency_row("cuda", s),
            lambda: onnx_latency_row("tensorrt", s), lambda: stream_fps_row(device, s)]
    print("| measurement | precision | time | throughput | peak memory |")
    print("|---|---|---|---|---|", flush=True)
    failed = 0
    for row in rows:  # each row as soon as it is measured; a failed row is reported, not fatal
        try:
            cells = row()
        except Exception as exc:  # noqa: BLE001 - the table goes on; the exit status says so
            failed += 1
            cells = ("(row failed)", "", f"{type(exc).__name__}: {exc}"[:200], "", "")
        print("| " + " | ".join(cells) + " |", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
