"""``endofm finetune TASK`` and ``endofm evaluate TASK`` for every registered task."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from endofm.config import load_config, recipe_names, resolve_config
from endofm.tasks import TASKS
from endofm.tasks.base import task_config_schema
from endofm.tasks.engine import evaluate, fit, fit_seeds


def register(sub: argparse._SubParsersAction) -> None:
    finetune = sub.add_parser(
        "finetune", help="fine-tune a downstream task",
        description="Fine-tune Endo-FM on a downstream task. Settings come from the task's "
                    "defaults, then --config, then key=value overrides (e.g. optim.lr=0.01).")
    evaluate_p = sub.add_parser(
        "evaluate", help="evaluate a fine-tuned checkpoint",
        description="Evaluate a fine-tuned checkpoint (the project's format or the release's "
                    "where the task has one) and write metrics.json with predictions and plots.")
    fsub = finetune.add_subparsers(dest="task", metavar="TASK", required=True)
    esub = evaluate_p.add_subparsers(dest="task", metavar="TASK", required=True)
    for name in TASKS:
        f = fsub.add_parser(name, help=f"fine-tune {name}")
        f.add_argument("--config", help=f"a recipe name ({', '.join(recipe_names(name))}; "
                                        "see `endofm configs`) or a YAML file")
        f.add_argument("--data", type=Path, required=True, help="dataset root")
        f.add_argument("--output", type=Path, required=True, help="run folder")
        f.add_argument("--pretrained", type=Path, default=None,
                       help="backbone checkpoint (any layout endofm.create_model reads)")
        f.add_argument("--seeds", type=int, default=1,
                       help="run N seeds and report mean ± std (default 1)")
        f.add_argument("overrides", nargs="*", metavar="key=value")
        f.set_defaults(func=run_finetune)
        e = esub.add_parser(name, help=f"evaluate {name}")
        e.add_argument("--checkpoint", type=Path, required=True)
        e.add_argument("--data", type=Path, required=True, help="dataset root")
        e.add_argument("--output", type=Path, required=True)
        e.add_argument("--config", help="a recipe name or a YAML file (data settings)")
        e.add_argument("--split", default=None, help="split to evaluate (default: the task's "
                       "test split)")
        e.add_argument("overrides", nargs="*", metavar="key=value")
        e.set_defaults(func=run_evaluate)


def _config(args: argparse.Namespace):
    task_cls = TASKS[args.task]
    config = resolve_config(args.task, args.config)
    return task_cls, load_config(task_config_schema(task_cls), config, args.overrides)


def _summary(metrics: dict) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                     if isinstance(v, float) and not k.endswith("_std"))


def run_finetune(args: argparse.Namespace) -> int:
    task_cls, cfg = _config(args)
    if args.seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {args.seeds}")
    if args.pretrained is not None and not args.pretrained.exists():
        raise FileNotFoundError(f"pretrained checkpoint not found: {args.pretrained}")
    if args.seeds == 1:
        metrics = fit(task_cls(cfg), args.data, args.output, args.pretrained)
    else:
        metrics = fit_seeds(task_cls, cfg, args.data, args.output, args.pretrained, args.seeds)
    if metrics:
        print(f"{args.task}: {_summary(metrics)}")
        print(f"wrote {args.output / 'metrics.json'}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    task_cls, cfg = _config(args)
    if not args.checkpoint.exists():
        raise FileNotFoundError(f"checkpoint not found: {args.checkpoint}")
    metrics = evaluate(task_cls(cfg), args.checkpoint, args.data, args.output, args.split)
    print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, list)}, indent=2))
    return 0
