"""``endofm finetune TASK`` and ``endofm evaluate TASK`` for every registered task."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from endofm.cli import phase as phase_cli
from endofm.config import recipe_names

# The names of ``endofm.tasks.TASKS``, spelled out so that building the parser does not import
# torch (a test checks they agree).
TASK_NAMES = ("classification", "segmentation", "detection", "phase")
# each task's ``data.format`` choices (besides auto), spelled out likewise
DATA_FORMATS = {"classification": ("polypdiag", "manifest", "folders"),
                "segmentation": ("cvc", "image_masks", "coco"),
                "detection": ("kumc", "coco")}


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
    for name in TASK_NAMES:
        if name == "phase":  # two stages, and prediction files to score: its own options
            phase_cli.add_finetune(fsub)
            phase_cli.add_evaluate(esub)
            continue
        f = fsub.add_parser(name, help=f"fine-tune {name}")
        f.add_argument("--config", help=f"a recipe name ({', '.join(recipe_names(name))}; "
                                        "see `endofm configs`) or a YAML file")
        f.add_argument("--data", type=Path, required=True,
                       help="dataset root (or a manifest file)")
        add_format_argument(f, name)
        f.add_argument("--output", type=Path, required=True, help="run folder")
        f.add_argument("--pretrained", type=Path, default=None,
                       help="backbone checkpoint (any layout endofm.create_model reads)")
        f.add_argument("--seeds", type=int, default=1,
                       help="run N seeds and report mean ± std (default 1)")
        f.add_argument("--restart", action="store_true",
                       help="start over in --output (deletes its checkpoints and logs) instead "
                            "of resuming; needed to re-run a folder with other settings")
        f.add_argument("overrides", nargs="*", metavar="key=value")
        f.set_defaults(func=run_finetune)
        e = esub.add_parser(name, help=f"evaluate {name}")
        e.add_argument("--checkpoint", type=Path, required=True)
        e.add_argument("--data", type=Path, required=True,
                       help="dataset root (or a manifest file)")
        add_format_argument(e, name)
        e.add_argument("--output", type=Path, required=True)
        e.add_argument("--config",
                       help="a recipe name or a YAML file (default: the settings the model was "
                            "trained with, from config.yaml beside it)")
        e.add_argument("--override-settings", action="store_true",
                       help="let --config / overrides contradict the training settings")
        e.add_argument("--split", default=None, help="split to evaluate (default: the task's "
                       "test split)")
        e.add_argument("overrides", nargs="*", metavar="key=value")
        e.set_defaults(func=run_evaluate)


def add_format_argument(parser: argparse.ArgumentParser, task: str) -> None:
    """``--format`` (the ``data.format`` setting) with the task's formats, where it has a
    choice."""
    if task not in DATA_FORMATS:
        parser.set_defaults(fmt=None)
        return
    parser.add_argument("--format", dest="fmt", choices=("auto", *DATA_FORMATS[task]),
                        default=None, help="the data's layout (data.format; default: detected "
                                           "from the data, see docs/own-data.md)")


def format_overrides(args: argparse.Namespace) -> list[str]:
    """``--format X`` as the override ``data.format=X``."""
    return [] if args.fmt is None else [f"data.format={args.fmt}"]


def _config(args: argparse.Namespace):
    from endofm.config import load_config, resolve_config
    from endofm.tasks import TASKS
    from endofm.tasks.base import task_config_schema

    task_cls = TASKS[args.task]
    config = resolve_config(args.task, args.config)
    return task_cls, load_config(task_config_schema(task_cls), config,
                                 [*args.overrides, *format_overrides(args)])


def _evaluate_config(args: argparse.Namespace):
    """(task class, settings, record): the settings the model was trained with (its
    ``config.yaml``), then ``--config`` and overrides, which may not contradict them without
    ``--override-settings``."""
    from endofm.config import ConfigError, explicit_settings, load_config, resolve_config
    from endofm.tasks import TASKS
    from endofm.tasks.base import task_config_schema
    from endofm.train.run_record import find_record, settings_conflicts, trained_settings
    from endofm.utils.progress import note
    from endofm.utils.text import short_list

    task_cls = TASKS[args.task]
    config = resolve_config(args.task, args.config)
    record = find_record(args.checkpoint)
    trained = trained_settings(record) if record else None
    if trained is not None:
        _check_record_task(args.task, trained, record)
        conflicts = settings_conflicts(trained, explicit_settings(config, args.overrides))
        if conflicts and not args.override_settings:
            raise ConfigError(
                f"{record}: the model was trained with other settings than given "
                f"({short_list(conflicts)}); drop them to use the training settings, or add "
                "--override-settings")
        note(f"settings: as trained ({record})")
    elif config is None:
        note(f"settings: no config.yaml beside {args.checkpoint}; using the task's defaults "
             "(give --config with the settings the model was trained with)")
    # the data's format is the evaluation data's, not a training setting
    cfg = load_config(task_config_schema(task_cls), config,
                      [*args.overrides, *format_overrides(args)], base=trained,
                      base_source=f"training settings {record}")
    return task_cls, cfg, record


def _check_record_task(task: str, trained: dict, record: Path) -> None:
    """A run record another command wrote (a pre-training run, another task's run) is one
    clear error naming what it is, not the first setting the task's schema lacks."""
    from endofm.config import ConfigError, load_config
    from endofm.ssl import PretrainConfig
    from endofm.tasks import TASKS
    from endofm.tasks.base import task_config_schema

    def fits(schema: type) -> bool:
        try:
            load_config(schema, None, [], base=trained, base_source=str(record))
        except ConfigError:
            return False
        return True

    if fits(task_config_schema(TASKS[task])):
        return
    if fits(PretrainConfig):
        raise ConfigError(f"{record}: this is a pre-training run, not a fine-tuned {task} "
                          "model; `endofm probe` evaluates a pre-trained backbone, `endofm "
                          f"finetune {task} --pretrained` trains a {task} model from it")
    for other in TASK_NAMES:
        if other != task and fits(task_config_schema(TASKS[other])):
            raise ConfigError(f"{record}: this is a {other} run, not a {task} run; evaluate "
                              f"it with `endofm evaluate {other}`")


def _summary(metrics: dict) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                     if isinstance(v, float) and not k.endswith("_std"))


def run_finetune(args: argparse.Namespace) -> int:
    from endofm.models.hub import check_weights_exist
    from endofm.tasks.engine import fit, fit_seeds

    task_cls, cfg = _config(args)
    if args.seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {args.seeds}")
    if args.pretrained is not None:
        check_weights_exist(args.pretrained, "pretrained checkpoint")
    if args.seeds == 1:
        metrics = fit(task_cls(cfg), args.data, args.output, args.pretrained, args.restart)
    else:
        metrics = fit_seeds(task_cls, cfg, args.data, args.output, args.pretrained, args.seeds,
                            args.restart)
    if metrics:
        print(f"{args.task}: {_summary(metrics)}")
        print(f"wrote {args.output / 'metrics.json'}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from endofm.models.hub import check_weights_exist
    from endofm.tasks.engine import evaluate

    check_weights_exist(args.checkpoint)
    task_cls, cfg, record = _evaluate_config(args)
    extra = {"settings_from": str(record) if record else None}
    metrics = evaluate(task_cls(cfg), args.checkpoint, args.data, args.output, args.split,
                       extra)
    print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, list)}, indent=2))
    return 0
