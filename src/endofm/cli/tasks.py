"""``endofm finetune TASK`` and ``endofm evaluate TASK`` for every task of the task registry
(:mod:`endofm.tasks.registry`)."""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from endofm.config import recipe_names
from endofm.tasks.registry import TaskSpec, load_object, task_specs

logger = logging.getLogger(__name__)


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
    for spec in task_specs():
        if spec.cli is not None:  # the task's own sub-commands
            load_object(f"{spec.cli}:add_finetune")(fsub)
            load_object(f"{spec.cli}:add_evaluate")(esub)
            continue
        name = spec.name
        f = fsub.add_parser(name, help=f"fine-tune {name}: {spec.summary}")
        add_finetune_arguments(f, name, spec)
        f.set_defaults(func=run_finetune)
        e = esub.add_parser(name, help=f"evaluate {name}: {spec.summary}")
        e.add_argument("--checkpoint", type=Path, required=True)
        e.add_argument("--data", type=Path, required=True,
                       help="dataset root (or a manifest file)")
        add_format_argument(e, spec)
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


@dataclass(frozen=True)
class FinetuneHelp:
    """The help texts of a ``finetune TASK`` command's shared options."""

    data: str = "dataset root (or a manifest file)"
    pretrained: str = "backbone checkpoint (any layout endofm.create_model reads)"
    seeds: str = "run N seeds and report mean ± std (default 1)"
    restart: str = ("start over in --output (deletes its checkpoints and logs) instead of "
                    "resuming; needed to re-run a folder with other settings")


def add_finetune_arguments(parser: argparse.ArgumentParser, task: str,
                           spec: TaskSpec | None = None,
                           texts: FinetuneHelp = FinetuneHelp()) -> None:
    """The options every ``finetune TASK`` has: ``--config`` (the task's recipes), ``--data``,
    ``--format`` (with ``spec``, where the task reads several), ``--output``, ``--pretrained``,
    ``--seeds``, ``--restart`` and the ``key=value`` overrides."""
    parser.add_argument("--config", help=f"a recipe name ({', '.join(recipe_names(task))}; "
                                         "see `endofm configs`) or a YAML file")
    parser.add_argument("--data", type=Path, required=True, help=texts.data)
    if spec is not None:
        add_format_argument(parser, spec)
    parser.add_argument("--output", type=Path, required=True, help="run folder")
    parser.add_argument("--pretrained", type=Path, default=None, help=texts.pretrained)
    parser.add_argument("--seeds", type=int, default=1, help=texts.seeds)
    parser.add_argument("--restart", action="store_true", help=texts.restart)
    parser.add_argument("overrides", nargs="*", metavar="key=value")


def add_format_argument(parser: argparse.ArgumentParser, spec: TaskSpec) -> None:
    """``--format`` (the ``data.format`` setting) with the task's registered formats, where it
    has a choice."""
    if len(spec.formats) < 2:
        parser.set_defaults(fmt=None)
        return
    parser.add_argument("--format", dest="fmt", choices=("auto", *spec.formats),
                        default=None, help="the data's layout (data.format; default: detected "
                                           "from the data, see docs/own-data.md)")


def format_overrides(args: argparse.Namespace) -> list[str]:
    """``--format X`` as the override ``data.format=X``."""
    return [] if args.fmt is None else [f"data.format={args.fmt}"]


def _config(args: argparse.Namespace):
    from endofm.config import load_config, resolve_config
    from endofm.tasks.registry import get_task

    spec = get_task(args.task)
    config = resolve_config(args.task, args.config)
    return spec.task_class(), load_config(spec.config_schema(), config,
                                          [*args.overrides, *format_overrides(args)])


def _evaluate_config(args: argparse.Namespace):
    """(task class, settings, record): the settings the model was trained with (its
    ``config.yaml``), then ``--config`` and overrides, which may not contradict them without
    ``--override-settings``."""
    from endofm.config import ConfigError, explicit_settings, load_config, resolve_config
    from endofm.tasks.registry import get_task
    from endofm.train.run_record import find_record, settings_conflicts, trained_settings
    from endofm.utils.text import short_list

    spec = get_task(args.task)
    config = resolve_config(args.task, args.config)
    record = find_record(args.checkpoint)
    trained = trained_settings(record) if record else None
    if trained is not None:
        check_record_task(args.task, record, trained)
        conflicts = settings_conflicts(trained, explicit_settings(config, args.overrides))
        if conflicts and not args.override_settings:
            raise ConfigError(
                f"{record}: the model was trained with other settings than given "
                f"({short_list(conflicts)}); drop them to use the training settings, or add "
                "--override-settings")
        logger.info("settings: as trained (%s)", record)
    elif config is None:
        logger.info("settings: no config.yaml beside %s; using the task's defaults (give "
                    "--config with the settings the model was trained with)", args.checkpoint)
    # the data's format is the evaluation data's, not a training setting
    cfg = load_config(spec.config_schema(), config,
                      [*args.overrides, *format_overrides(args)], base=trained,
                      base_source=f"training settings {record}")
    return spec.task_class(), cfg, record


def check_record_task(task: str, record: Path, trained: dict) -> None:
    """A run record another command wrote (a pre-training run, another task's run) is one
    clear error naming what it is, not the first setting the task's schema lacks. The run is
    recognised by the ``origin`` it records; a record written before runs recorded one, by its
    sections."""
    from endofm.config import ConfigError
    from endofm.tasks.registry import task_names
    from endofm.train.run_record import describe_origin, record_origin

    origin = record_origin(record) or legacy_origin(trained, task)
    if origin is None or origin == {"command": "finetune", "task": task}:
        return
    if origin.get("command") == "pretrain":
        raise ConfigError(f"{record}: this is a pre-training run, not a fine-tuned {task} "
                          "model; `endofm probe` evaluates a pre-trained backbone, `endofm "
                          f"finetune {task} --pretrained` trains a {task} model from it")
    other = origin.get("task")
    if origin.get("command") != "finetune" or other not in task_names():
        raise ConfigError(f"{record}: a run of `endofm {describe_origin(origin)}`, which is no "
                          f"registered task's fine-tuning (registered tasks: "
                          f"{', '.join(task_names())}); written by another endofm version?")
    raise ConfigError(f"{record}: this is a {other} run, not a {task} run; evaluate it with "
                      f"`endofm evaluate {other}`")


def check_model_task(task: str, checkpoint: Path) -> None:
    """A model another task saved (its recorded ``kind``) is one clear error naming it."""
    from endofm.config import ConfigError
    from endofm.inference.task_models import saved_task

    found = saved_task(checkpoint)
    if found is not None and found.name != task:
        raise ConfigError(f"{checkpoint}: this is a {found.name} model, not a {task} model; "
                          f"evaluate it with `endofm evaluate {found.name}`")


def legacy_origin(trained: dict, expected: str) -> dict[str, str] | None:
    """The origin of a run record written before runs recorded it, from its top-level
    sections (each command's schema has its own): a task whose schema has exactly those
    sections (``expected`` first), else one whose schema has them all, else pre-training;
    ``None`` when none fits."""
    import dataclasses

    from endofm.ssl import PretrainConfig
    from endofm.tasks.registry import get_task, task_specs

    sections = set(trained)
    specs = (get_task(expected), *task_specs())
    fields = {spec.name: {f.name for f in dataclasses.fields(spec.config_schema())}
              for spec in specs}
    # a schema with exactly the record's sections first, then one that has them all
    for fits in (sections.__eq__, sections.__le__):
        for spec in specs:
            if fits(fields[spec.name]):
                return {"command": "finetune", "task": spec.name}
    if sections <= {f.name for f in dataclasses.fields(PretrainConfig)}:
        return {"command": "pretrain"}
    return None


def _summary(metrics: dict) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                     if isinstance(v, float) and not k.endswith("_std"))


def check_finetune_args(args: argparse.Namespace) -> None:
    """Every ``finetune`` command's ``--seeds`` (at least 1) and ``--pretrained`` (a local path
    must exist; an ``hf-hub:`` name is checked when it is resolved)."""
    from endofm.models.hub import check_weights_exist

    if args.seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {args.seeds}")
    if args.pretrained is not None:
        check_weights_exist(args.pretrained, "pretrained checkpoint")


def print_finetuned(args: argparse.Namespace, summary: str) -> None:
    """The closing lines of every ``finetune`` command: the task's metrics, metrics.json."""
    print(f"{args.task}: {summary}")
    print(f"wrote {args.output / 'metrics.json'}")


def run_finetune(args: argparse.Namespace) -> int:
    from endofm.tasks.engine import fit, fit_seeds

    task_cls, cfg = _config(args)
    check_finetune_args(args)
    if args.seeds == 1:
        metrics = fit(task_cls(cfg), args.data, args.output, args.pretrained, args.restart)
    else:
        metrics = fit_seeds(task_cls, cfg, args.data, args.output, args.pretrained, args.seeds,
                            args.restart)
    if metrics:
        print_finetuned(args, _summary(metrics))
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from endofm.models.hub import check_weights_exist
    from endofm.tasks.engine import evaluate

    check_weights_exist(args.checkpoint)
    check_model_task(args.task, args.checkpoint)
    task_cls, cfg, record = _evaluate_config(args)
    extra = {"settings_from": str(record) if record else None}
    metrics = evaluate(task_cls(cfg), args.checkpoint, args.data, args.output, args.split,
                       extra)
    print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, list)}, indent=2))
    return 0
