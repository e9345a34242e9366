"""``endofm extract``: embeddings for every window of every video."""

from __future__ import annotations

import argparse

from endofm.cli.inference_args import (
    add_io_args,
    add_runtime_args,
    add_window_args,
    folder_fps,
    report_errors,
)
from endofm.cli.runtime_args import add_runtime_choice


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "extract", help="embeddings for every window of every video",
        description="Sliding-window Endo-FM embeddings of your videos: one .npy per video "
                    "(DIR/<path relative to its input>.npy, [windows, D] or [windows, D, h, w]), "
                    "DIR/index.csv (one row per window) and DIR/run.json. Re-running the same "
                    "command skips finished videos. Window k covers frames k*S + j*R, j < T.")
    add_io_args(p, "backbone checkpoint (any layout endofm.create_model reads) or a "
                   "fine-tuned task directory (its backbone is used)")
    add_window_args(p)
    add_backbone_frame_args(p)
    p.add_argument("--features", choices=("cls", "mean_patch", "patch_grid"), default="cls",
                   help="CLS token [D], mean patch token [D], or per-patch grid [D, h, w] "
                        "(averaged over the window's frames); default cls")
    p.add_argument("--dtype", choices=("float32", "float16"), default="float32",
                   help="dtype of the .npy files (default float32)")
    add_runtime_args(p, compile=True)
    add_runtime_choice(p)
    p.set_defaults(func=run_extract)


def add_backbone_frame_args(p: argparse.ArgumentParser) -> None:
    """``--size``, ``--no-crop`` and ``--normalization`` (extract and attention)."""
    p.add_argument("--size", type=int, default=None,
                   help="short side in pixels, then a centre PX x PX crop (default: the "
                        "checkpoint's image size)")
    p.add_argument("--no-crop", dest="crop", action="store_false",
                   help="keep the whole frame (cropped to multiples of the patch size)")
    p.add_argument("--normalization", choices=("kinetics", "imagenet"), default="kinetics",
                   help="mean/std: kinetics (0.45/0.225, the release's downstream) or imagenet "
                        "(its pre-training); default kinetics")


def backbone_options(args: argparse.Namespace, device: str) -> dict[str, object]:
    """The :class:`endofm.inference.encoder.BackboneWindows` options of a parsed command."""
    return {"size": args.size, "crop": args.crop, "batch_size": args.batch_size,
            "num_workers": args.workers, "device": device, "precision": args.precision,
            "normalization": args.normalization, "folder_fps": folder_fps(args),
            "num_heads": args.num_heads}


def run_extract(args: argparse.Namespace) -> int:
    from endofm.inference.encoder import VideoEncoder
    from endofm.inference.extract import extract
    from endofm.utils.distributed import init_distributed

    onnx = args.runtime == "onnx"
    model = args.checkpoint
    if onnx:
        from endofm.cli.runtime_args import onnx_backbone

        model = onnx_backbone(args)
    dist = init_distributed("cpu" if onnx else args.device)  # onnx: --device picks providers
    device = args.device if dist.world_size == 1 else str(dist.device)  # torchrun: rank's own
    options = backbone_options(args, "cpu" if onnx else device)
    if onnx:
        options.update(precision="fp32", num_heads=None)
    encoder = VideoEncoder(model, args.num_frames, args.frame_step, args.stride,
                           features=args.features, compile=args.compile, **options)
    report = extract(encoder, args.inputs, args.output, str(args.checkpoint), args.dtype,
                     progress=not args.quiet)
    if dist.is_main:
        print(f"extract: {report.processed} videos processed, {report.resumed} already done, "
              f"{len(report.errors)} with errors ({encoder.precision}); wrote {args.output}")
        report_errors(report.errors)
    return 0 if report.ok else 1
