"""``endofm pretrain``: self-supervised pre-training on folders of videos or a manifest."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pretrain", help="self-supervised pre-training (L_cv + L_dm)",
        description="Pre-train Endo-FM on unlabelled videos. Settings: the release's defaults, "
                    "then --config, then key=value overrides (e.g. train.epochs=5 "
                    "model.backbone.pretrained=endo_fm.pth). Re-running on the same --output "
                    "resumes from its newest checkpoint.")
    p.add_argument("--config", help="a recipe name (tiny, endofm_vitb; see `endofm configs`) "
                                    "or a YAML file")
    p.add_argument("--data", type=Path, required=True,
                   help="a folder of videos / frame folders, or a manifest (.csv/.jsonl)")
    p.add_argument("--output", type=Path, required=True, help="run folder")
    p.add_argument("--restart", action="store_true",
                   help="start over in --output (deletes its checkpoints and logs) instead of "
                        "resuming; needed to re-run a folder with other settings")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from endofm.config import load_config, resolve_config
    from endofm.ssl import PretrainConfig, pretrain

    cfg = load_config(PretrainConfig, resolve_config("pretrain", args.config), args.overrides)
    report = pretrain(cfg, args.data, args.output, args.restart)
    if report:
        loss = f", final loss {report['final_loss']:.4f}" if "final_loss" in report else ""
        print(f"pre-trained {report['epochs']} epochs ({report['steps']} steps) on "
              f"{report['num_clips']} clips{loss}; {report['num_skipped']} skipped")
        print(f"checkpoints in {args.output}; backbone in {args.output / 'backbone'}")
    return 0
