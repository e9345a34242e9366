"""``endofm attention``: last-block CLS → patch attention maps over whole videos."""

from __future__ import annotations

import argparse

from endofm.cli.inference_args import add_io_args, add_runtime_args, add_window_args, report_errors


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "attention", help="what the model looks at: attention maps over whole videos",
        description="Last-block CLS → patch spatial attention per frame (mean over heads and "
                    "per head, renormalised over the patches), up-sampled and overlaid on the "
                    "frames: DIR/<video>/sheets/window_<k>.png, attention.mp4 and "
                    "attention.npy [windows, T, heads, h, w].")
    add_io_args(p, "backbone checkpoint or fine-tuned task directory")
    add_window_args(p)
    p.add_argument("--size", type=int, default=None,
                   help="short side, then a centre crop (default: the checkpoint's image size)")
    p.add_argument("--no-crop", dest="crop", action="store_false",
                   help="keep the whole frame (cropped to multiples of the patch size)")
    add_runtime_args(p, batch_size=2)
    p.set_defaults(func=run_attention_command)


def run_attention_command(args: argparse.Namespace) -> int:
    from endofm.inference.attention import run_attention
    from endofm.inference.encoder import VideoEncoder

    encoder = VideoEncoder(args.checkpoint, args.num_frames, args.frame_step, args.stride,
                           size=args.size, crop=args.crop, batch_size=args.batch_size,
                           num_workers=args.workers, device=args.device,
                           precision=args.precision)
    run = run_attention(encoder, args.inputs, args.output, str(args.checkpoint),
                        progress=not args.quiet)
    print(f"attention: {len(run['videos'])} videos, {len(run['errors'])} with errors; "
          f"wrote {args.output}")
    return report_errors(run["errors"])
