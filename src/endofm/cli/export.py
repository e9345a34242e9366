"""``endofm export``: a backbone or fine-tuned model to ONNX, checked against PyTorch."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_OPSET = 18  # endofm.deploy.export.DEFAULT_OPSET (checked by the start-up test)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export a model to ONNX (with its metadata), checked against PyTorch",
        description="Export a backbone or a fine-tuned classification, segmentation or "
                    "detection model to one ONNX file with a dynamic batch dimension (a phase "
                    "model: its temporal graph, windows dynamic, and its backbone's beside it, "
                    "OUTPUT.backbone.onnx). The "
                    "file's metadata records task, class names, frames, frame step, input "
                    "size, mean/std and threshold. ONNX Runtime must reproduce PyTorch on a "
                    "random and a real clip, or nothing is written. Needs "
                    "pip install 'endofm[onnx]'.")
    p.add_argument("--checkpoint", required=True, type=Path,
                   help="backbone checkpoint, fine-tuned task directory (phase: RUN/best) "
                        "or polypdiag.pth")
    p.add_argument("--output", required=True, type=Path, help="the .onnx file to write")
    p.add_argument("--num-frames", type=int, default=None, metavar="T",
                   help="frames per clip (default: the checkpoint's)")
    p.add_argument("--size", default=None, metavar="PX|HxW",
                   help="input size, 224 or HEIGHTxWIDTH (default: the checkpoint's; "
                        "detection: its min_size padded to a multiple of 64)")
    p.add_argument("--num-heads", type=int, default=None,
                   help="attention heads, for released files of a width no named config has")
    p.add_argument("--backbone", action="store_true",
                   help="export only the backbone of a fine-tuned directory (for extract)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                   help=f"ONNX opset (default {DEFAULT_OPSET})")
    p.add_argument("--video", type=Path, default=None,
                   help="a video whose first window is the real clip of the parity check "
                        "(default: a rendered endoscopy scene)")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest |ONNX Runtime - PyTorch| allowed (default 1e-4)")
    p.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from endofm.deploy.dependencies import require
    from endofm.deploy.model import checkpoint_task

    for module in ("onnx", "onnxscript", "onnxruntime"):
        require(module, "endofm export")
    if not args.backbone and checkpoint_task(args.checkpoint) == "phase":
        return run_phase_export(args)
    from endofm.deploy.export import export_onnx
    from endofm.deploy.model import load_deploy_model

    deploy = load_deploy_model(args.checkpoint, args.num_frames, args.size, args.num_heads,
                               args.backbone)
    report = export_onnx(deploy, args.output, args.opset, args.video, args.tolerance)
    meta = report.metadata
    print(f"export: {meta['task']} model, clips [B, 3, {meta['num_frames']}, {meta['height']}, "
          f"{meta['width']}], opset {meta['opset']} → {report.path} "
          f"({report.seconds:.1f} s)")
    for result in report.parity:
        print(f"  parity: {result.summary()}")
    return 0


def run_phase_export(args: argparse.Namespace) -> int:
    """A phase model: its temporal graph to ``--output``, its backbone's beside it."""
    from endofm.deploy.phase import export_phase

    fixed = {"--num-frames": args.num_frames, "--size": args.size, "--num-heads": args.num_heads}
    given = [option for option, value in fixed.items() if value is not None]
    if given:
        raise ValueError(f"{args.checkpoint}: a phase model's windows are those its features "
                         f"were trained on; {', '.join(given)} cannot change them")
    report = export_phase(args.checkpoint, args.output, args.opset, args.video, args.tolerance)
    meta, bb = report.metadata, report.backbone_metadata
    print(f"export: phase model ({len(meta['phases'])} phases, "
          f"{'causal' if meta['causal'] else 'offline'}), features [B, N, {meta['in_dim']}], "
          f"opset {meta['opset']} → {report.path} ({report.seconds:.1f} s)")
    print(f"  backbone: clips [B, 3, {bb['num_frames']}, {bb['height']}, {bb['width']}] → "
          f"{report.backbone_path}")
    for result in report.backbone_parity + report.parity:
        print(f"  parity: {result.summary()}")
    return 0
