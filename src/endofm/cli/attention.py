"""``endofm attention``: last-block CLS → patch attention maps over whole videos."""

from __future__ import annotations

import argparse

from endofm.cli.extract import add_backbone_frame_args, backbone_options
from endofm.cli.inference_args import add_io_args, add_runtime_args, add_window_args, report_errors


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "attention", help="what the model looks at: attention maps over whole videos",
        description="Last-block CLS → patch spatial attention per frame (mean over heads and "
                    "per head, renormalised over the patches), up-sampled and overlaid on the "
                    "frames: DIR/<video>/sheets/window_<k>.png, attention.mp4, "
                    "attention.npy [windows, T, heads, h, w] and report.html; DIR/index.html "
                    "links every video and DIR/run.json records the run.")
    add_io_args(p, "backbone checkpoint or fine-tuned task directory")
    add_window_args(p)
    add_backbone_frame_args(p)
    add_runtime_args(p, batch_size=2)
    p.set_defaults(func=run_attention_command)


def run_attention_command(args: argparse.Namespace) -> int:
    from endofm.inference.attention import AttentionMaps, run_attention

    model = AttentionMaps(args.checkpoint, args.num_frames, args.frame_step, args.stride,
                          **backbone_options(args, args.device))
    run = run_attention(model, args.inputs, args.output, str(args.checkpoint),
                        progress_enabled=not args.quiet)
    print(f"attention: {len(run['videos'])} videos, {len(run['errors'])} with errors; "
          f"reports: {args.output / 'index.html'}")
    return report_errors(run["errors"])
