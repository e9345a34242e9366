"""``endofm finetune phase`` (stage 1 window features, then the temporal model),
``endofm evaluate phase`` (prediction files, or a fine-tuned model) and the phase options of
``endofm predict phase``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# endofm.tasks.phase.metrics.RelaxedMode / endofm.data.phase.LAYOUTS, spelled out so that
# building the parser imports neither (a test checks they agree)
RELAXED_MODES = ("official", "corrected")
LAYOUTS = ("cholec80", "autolaparo", "segments")
SPLITS = ("train", "val", "test", "all")


def add_finetune(fsub: argparse._SubParsersAction) -> None:
    """``finetune phase``: features of every video (cached), then the temporal model."""
    from endofm.cli.tasks import FinetuneHelp, add_finetune_arguments

    f = fsub.add_parser(
        "phase", help="fine-tune phase recognition (features, then a temporal model)",
        description="Two stages: (1) window features of every video through the extraction "
                    "path (features.rate per second, cached in OUTPUT/features and resumed), "
                    "from the frozen backbone or one first fine-tuned as a window classifier "
                    "(features.source=finetuned); (2) a multi-stage temporal convolutional "
                    "network over each whole video (model.causal=true for online use).")
    add_finetune_arguments(f, "phase", texts=FinetuneHelp(
        data="phase dataset root",
        pretrained="backbone checkpoint for the features (default: a random one)",
        seeds="train the temporal model with N seeds on the same features",
        restart="start over in --output (features included) instead of resuming"))
    f.set_defaults(func=run_finetune)


def run_finetune(args: argparse.Namespace) -> int:
    from endofm.cli.tasks import check_finetune_args, print_finetuned
    from endofm.config import load_config, resolve_config
    from endofm.inference.phase import finetune_phase
    from endofm.tasks.phase.config import PhaseConfig

    check_finetune_args(args)
    cfg = load_config(PhaseConfig, resolve_config("phase", args.config), args.overrides)
    metrics = finetune_phase(cfg, args.data, args.output, args.pretrained, args.restart,
                             args.seeds)
    if metrics:
        print_finetuned(args, summary_line(metrics))
    return 0


def add_evaluate(esub: argparse._SubParsersAction) -> None:
    """``evaluate phase``: score prediction files, or run a fine-tuned model and score it."""
    e = esub.add_parser(
        "phase", help="score phase predictions (files or a fine-tuned model)",
        description="Score phase predictions against a phase dataset's annotations: either "
                    "prediction files laid out like the annotations (--predictions: one "
                    "videoNN-phase.txt per video, Frame<TAB>Phase rows at any rate, names or "
                    "0-based indices; no videos needed) or a model written by `endofm "
                    "finetune phase` (--checkpoint). Writes metrics.json and per_video.csv.")
    source = e.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", type=Path, help="folder of prediction files")
    source.add_argument("--checkpoint", type=Path,
                        help="RUN/best of `endofm finetune phase` (its features are extracted "
                             "into OUTPUT/features with the backbone it was trained on)")
    e.add_argument("--data", type=Path, required=True, help="phase dataset root")
    e.add_argument("--output", type=Path, required=True)
    e.add_argument("--split", choices=SPLITS, default="test",
                   help="videos to score (default test; the split rule is recorded)")
    e.add_argument("--layout", choices=("auto", *LAYOUTS), default="auto")
    e.add_argument("--relaxed", choices=RELAXED_MODES, default="official",
                   help="relaxed-boundary indexing: official (as the Cholec80/M2CAI script "
                        "computes it, default) or corrected (docs/phase.md)")
    e.set_defaults(func=run_evaluate)


def summary_line(metrics: dict) -> str:
    keys = ("accuracy", "relaxed_accuracy", "jaccard", "relaxed_jaccard", "edit", "f1@50")
    return ", ".join(f"{k} {metrics[k]:.4f}" for k in keys if k in metrics)


def run_evaluate(args: argparse.Namespace) -> int:
    from endofm.tasks.phase.scoring import score_predictions, write_scores

    if args.predictions is not None:
        result = score_predictions(args.predictions, args.data, args.split, args.relaxed,
                                   args.layout)
    else:
        from endofm.inference.phase import evaluate_checkpoint

        result = evaluate_checkpoint(args.checkpoint, args.data, args.output, args.split,
                                     args.relaxed)
    path = write_scores(result, args.output)
    print(f"phase ({result['num_videos']} videos, {result['split']}): {summary_line(result)}")
    print(json.dumps({k: v for k, v in result.items()
                      if isinstance(v, (int, float)) and not isinstance(v, bool)}, indent=2))
    print(f"wrote {path}")
    return 0


def add_predict(tasks: argparse._SubParsersAction) -> None:
    """``predict phase``: a fine-tuned phase model over whole videos."""
    text = ("per-window phase probabilities (phases.csv), a ribbon timeline (ribbon.png, the "
            "annotated phases under it with --annotations), phase durations and a report")
    p = tasks.add_parser("phase", help=text, description=text + ". --online runs the causal "
                         "model as if live and records what it showed at each window.")
    p.add_argument("--checkpoint", type=Path, required=True,
                   help="RUN/best of `endofm finetune phase`")
    p.add_argument("inputs", nargs="+", type=Path, metavar="VIDEO",
                   help="video files, folders of videos or manifests")
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--online", action="store_true",
                   help="run the causal model window by window, as live")
    p.add_argument("--annotations", type=Path, default=None,
                   help="a phase dataset whose annotations are drawn under the prediction")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=None,
                   help="windows per backbone batch (default: as trained)")
    p.add_argument("--workers", type=int, default=None,
                   help="video-decoding workers (default: as trained)")
    p.set_defaults(func=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    from endofm.cli.inference_args import report_errors
    from endofm.inference.phase_predict import predict_phase

    run = predict_phase(args.checkpoint, args.inputs, args.output, args.online,
                        args.annotations, args.device, args.batch_size, args.workers)
    print(f"predict phase: {len(run['videos'])} videos, {len(run['errors'])} with errors; "
          f"reports: {args.output / 'index.html'}")
    return report_errors(run["errors"])
