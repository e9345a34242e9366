"""``endofm predict TASK``: a fine-tuned model over whole videos, with reports, for every
task of the task registry."""

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
from endofm.tasks.registry import load_object, task_specs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict", help="run a fine-tuned model over whole videos",
        description="Run a fine-tuned model (a directory written by `endofm finetune`, or the "
                    "released polypdiag.pth for classification) over whole videos with sliding "
                    "windows. DIR/<video>/ gets the artefacts and report.html; DIR/index.html "
                    "links every video; DIR/run.json records settings and errors. Every task "
                    "takes the same options; one that means nothing for the task is refused.")
    tasks = p.add_subparsers(dest="task", metavar="TASK", required=True)
    for spec in task_specs():
        if spec.cli is not None:  # the task's own sub-command
            load_object(f"{spec.cli}:add_predict")(tasks)
            continue
        text = spec.predict_help
        t = tasks.add_parser(spec.name, help=text, description=text)
        add_io_args(t, "a directory written by `endofm finetune` (classification: also the "
                       "released polypdiag.pth layout)")
        add_window_args(t, num_frames=False, frame_step_help=spec.window_help[0],
                        stride_help=spec.window_help[1])
        t.add_argument("--size", type=int, default=None,
                       help="classification: short side frames are decoded at before the "
                            "centre crop (default: crop x 256 / 224)")
        t.add_argument("--threshold", type=float, default=None,
                       help="classification: decision threshold on the smoothed positive-class "
                            "probability (default 0.5); detection: box score threshold "
                            "(default: the model's operating threshold, else 0.5)")
        t.add_argument("--smooth", type=int, default=None,
                       help="classification: windows in the moving average before the max "
                            "(default 3)")
        add_runtime_args(t, batch_size=4)
        add_runtime_choice(t)
        t.set_defaults(func=run_predict_command)


def run_predict_command(args: argparse.Namespace) -> int:
    from endofm.inference.predict import make_predictor
    from endofm.inference.predict_run import run_predict
    from endofm.inference.task_models import load_task_model
    from endofm.inference.windowed import check_num_heads

    onnx = args.runtime == "onnx"
    if onnx:
        from endofm.cli.runtime_args import onnx_task_model

        task_model = onnx_task_model(args)
    else:
        check_num_heads(args.checkpoint, args.num_heads)
        task_model = load_task_model(args.checkpoint, args.task, args.num_heads)
    options = {"frame_step": args.frame_step, "stride": args.stride, "size": args.size,
               "threshold": args.threshold, "smooth": args.smooth,
               "batch_size": args.batch_size, "num_workers": args.workers,
               "device": "cpu" if onnx else args.device,  # onnx: --device picks providers
               "precision": "fp32" if onnx else args.precision,
               "folder_fps": folder_fps(args)}
    predictor = make_predictor(task_model, **options)
    run = run_predict(predictor, args.inputs, args.output, str(args.checkpoint),
                      progress_enabled=not args.quiet)
    print(f"predict {args.task}: {len(run['videos'])} videos, {len(run['errors'])} with errors "
          f"({predictor.precision}); reports: {args.output / 'index.html'}")
    return report_errors(run["errors"])
