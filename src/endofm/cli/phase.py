"""``endofm evaluate phase``: phase prediction files scored against a dataset's
annotations."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# endofm.tasks.phase.metrics.RelaxedMode / endofm.data.phase.LAYOUTS, spelled out so that
# building the parser imports neither (a test checks they agree)
RELAXED_MODES = ("official", "corrected")
LAYOUTS = ("cholec80", "autolaparo", "segments")
SPLITS = ("train", "val", "test", "all")


def add_evaluate(esub: argparse._SubParsersAction) -> None:
    """``evaluate phase``: score prediction files."""
    e = esub.add_parser(
        "phase", help="score phase prediction files",
        description="Score phase predictions against a phase dataset's annotations: either "
                    "prediction files laid out like the annotations (--predictions: one "
                    "videoNN-phase.txt per video, Frame<TAB>Phase rows at any rate, names or "
                    "0-based indices; no videos needed). Writes metrics.json and "
                    "per_video.csv.")
    e.add_argument("--predictions", type=Path, required=True,
                   help="folder of prediction files")
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

    result = score_predictions(args.predictions, args.data, args.split, args.relaxed,
                               args.layout)
    path = write_scores(result, args.output)
    print(f"phase ({result['num_videos']} videos, {result['split']}): {summary_line(result)}")
    print(json.dumps({k: v for k, v in result.items()
                      if isinstance(v, (int, float)) and not isinstance(v, bool)}, indent=2))
    print(f"wrote {path}")
    return 0
