"""``endofm predict TASK``: a fine-tuned model over whole videos, with reports."""

from __future__ import annotations

import argparse

from endofm.cli import phase as phase_cli
from endofm.cli.inference_args import add_io_args, add_runtime_args, report_errors
from endofm.cli.runtime_args import add_runtime_choice

TASK_HELP = {
    "classification": "per-window probabilities, timeline.csv/png and a video-level decision "
                      "(max of the smoothed abnormal probability >= --threshold)",
    "segmentation": "per-frame masks (PNG), overlay.mp4 and polyp area over time",
    "detection": "per-frame boxes (COCO JSON), overlay.mp4 and detections over time",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict", help="run a fine-tuned model over whole videos",
        description="Run a fine-tuned model (a directory written by `endofm finetune`, or the "
                    "released polypdiag.pth for classification) over whole videos with sliding "
                    "windows. DIR/<video>/ gets the artefacts and report.html; DIR/index.html "
                    "links every video; DIR/run.json records settings and errors.")
    tasks = p.add_subparsers(dest="task", metavar="TASK", required=True)
    for task, text in TASK_HELP.items():
        t = tasks.add_parser(task, help=text, description=text)
        add_io_args(t, "a directory written by `endofm finetune` (classification: also the "
                       "released polypdiag.pth layout)")
        t.add_argument("--num-heads", type=int, default=None,
                       help="attention heads, for released files of a width no named config has")
        t.add_argument("--frame-step", default=None, metavar="R",
                       help="frames (or seconds, 0.5s) between a window's frames "
                            "(classification; default 32 at 30 fps) or between predicted "
                            "frames (segmentation, detection; default 1)")
        t.add_argument("--stride", default=None, metavar="S",
                       help="frames or seconds between window starts (default: adjacent)")
        t.add_argument("--size", type=int, default=None,
                       help="short side frames are decoded at (default: the task's)")
        if task == "classification":
            t.add_argument("--threshold", type=float, default=0.5,
                           help="decision threshold on the smoothed abnormal probability "
                                "(default 0.5)")
        if task == "detection":
            t.add_argument("--threshold", type=float, default=None,
                           help="box score threshold (default: the model's operating "
                                "threshold, else 0.5)")
        if task == "classification":
            t.add_argument("--smooth", type=int, default=3,
                           help="windows in the moving average before the max (default 3)")
        add_runtime_args(t, batch_size=4)
        add_runtime_choice(t)
        t.set_defaults(func=run_predict_command)
    phase_cli.add_predict(tasks)


def run_predict_command(args: argparse.Namespace) -> int:
    from endofm.inference.predict import make_predictor
    from endofm.inference.predict_run import run_predict
    from endofm.inference.task_models import load_task_model

    onnx = args.runtime == "onnx"
    if onnx:
        from endofm.cli.runtime_args import onnx_task_model

        task_model = onnx_task_model(args)
    else:
        task_model = load_task_model(args.checkpoint, args.task, args.num_heads)
    options = {"frame_step": args.frame_step, "stride": args.stride,
               "batch_size": args.batch_size, "num_workers": args.workers,
               "device": "cpu" if onnx else args.device,  # onnx: --device picks providers
               "precision": "fp32" if onnx else args.precision, "size": args.size}
    if args.task != "segmentation":
        options["threshold"] = args.threshold
    if args.task == "classification":
        options["smooth"] = args.smooth
    predictor = make_predictor(task_model, **options)
    run = run_predict(predictor, args.inputs, args.output, str(args.checkpoint),
                      progress=not args.quiet)
    print(f"predict {args.task}: {len(run['videos'])} videos, {len(run['errors'])} with errors "
          f"({predictor.precision}); reports: {args.output / 'index.html'}")
    return report_errors(run["errors"])
