"""What made a run's weights, and the guard that keeps a run folder consistent.

Both training loops (pre-training and fine-tuning) call :func:`start_run` once, on the main
process, before resuming::

    start_run(cfg, output, run_inputs(data, pretrained), restart, state_files=["last.pth"],
              origin=run_origin("finetune", "segmentation"))

It writes ``config.yaml``: the resolved settings, an ``inputs`` section (the resolved ``--data``
path and the ``--pretrained`` file's path, size and SHA-256), an ``origin`` section (the
command and task that made the run, by which the folder is recognised) and the git commit. A
re-run into a folder whose ``config.yaml`` records another origin or other settings is refused
with a :class:`RunMismatchError` naming the differing keys, unless (other settings)
``restart`` is set, which deletes the folder's training state (checkpoints, ``metrics.jsonl``,
TensorBoard events) so the run starts over. Settings that do not change the weights made so far
may differ (devices, worker counts, progress, logging and saving intervals, and the number of
epochs, to extend a run).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from endofm.config import (
    GIT_LINE,
    flatten,
    load_yaml,
    renamed_to_current,
    save_settings,
    to_dict,
)
from endofm.utils.text import short_list

# the run record (settings, inputs, origin); not a model folder's ``config.json``
# (``endofm.models.checkpoint.MODEL_CONFIG_NAME``)
RUN_RECORD_NAME = "config.yaml"
ORIGIN = "origin"
# Settings (last key component) that may change between a run and its resumption: where and how
# it runs, how often it logs and saves, and how long it goes on (``epochs``: extending a run).
MAY_DIFFER = frozenset({"device", "num_workers", "progress", "log_every", "save_every_steps",
                        "save_every_epochs", "keep_last", "epochs"})
LOG_FILES = ("metrics.jsonl", "tensorboard")
# Sections that only shape training, not the model or its inputs.
TRAINING_SECTIONS = frozenset({"optim", "train", "protocol", "inputs", ORIGIN})


class RunMismatchError(ValueError):
    """A run folder holds a run made with other settings or inputs."""


def fingerprint(path: str | Path) -> dict[str, Any]:
    """``{"path", "size", "sha256"}`` of a weights file (for a model folder, of its
    ``model.safetensors``; ``"name"`` too for an ``hf-hub:`` name)."""
    from endofm.models.hub import weights_fingerprint

    return weights_fingerprint(path)


def run_inputs(data: str | Path, pretrained: str | Path | None) -> dict[str, Any]:
    """The ``inputs`` section: the resolved data path and the pretrained weights' fingerprint."""
    return {"data": str(Path(data).resolve()),
            "pretrained": fingerprint(pretrained) if pretrained else None}


def run_origin(command: str, task: str | None = None) -> dict[str, str]:
    """The ``origin`` section of a run made by ``endofm COMMAND [TASK]``."""
    return {"command": command} | ({"task": task} if task else {})


def describe_origin(origin: Mapping[str, Any]) -> str:
    """``"finetune segmentation"`` / ``"pretrain"``: the command that made a run."""
    return " ".join(str(origin[key]) for key in ("command", "task") if origin.get(key))


def start_run(cfg: Any, output: str | Path, inputs: Mapping[str, Any], restart: bool = False,
              state_files: Sequence[str] = (), origin: Mapping[str, str] | None = None
              ) -> Path:
    """Check ``output`` against this run's settings and write ``config.yaml`` (see the module
    docstring). ``state_files`` are glob patterns of the loop's checkpoints; ``origin``
    (:func:`run_origin`) the command and task making the run."""
    output = Path(output)
    record = {**to_dict(cfg), "inputs": dict(inputs)} | ({ORIGIN: dict(origin)} if origin else {})
    path = output / RUN_RECORD_NAME
    old = read_record(path) if path.is_file() else None
    if old is not None and origin and old.get(ORIGIN, origin) != dict(origin):
        raise RunMismatchError(
            f"{output} holds a run of `endofm {describe_origin(old[ORIGIN])}`, not of `endofm "
            f"{describe_origin(origin)}`; use another --output (--restart would mix the two "
            "runs' files)")
    foreign = sorted(set(old) - set(record) - {ORIGIN}) if old is not None else []
    if foreign:
        raise RunMismatchError(
            f"{output} holds another command's run (its {RUN_RECORD_NAME} has sections "
            f"{', '.join(foreign)}, which this command's settings lack); use another --output "
            "(--restart would mix the two runs' files)")
    if restart:
        clear_run(output, state_files)
    elif old is not None:
        differing = differing_keys(comparable_inputs(old, record), record)
        if differing:
            raise RunMismatchError(
                f"{output} holds a run made with other settings ({short_list(differing)}); "
                "use the same settings to resume it, another --output, or --restart to start "
                "it over")
    return save_record(record, output)


def comparable_inputs(old: Mapping[str, Any], record: Mapping[str, Any]) -> dict[str, Any]:
    """``old`` with its pretrained weights' fingerprint in today's terms (an older endofm kept
    the first MiB's SHA-256; see :func:`endofm.models.hub.comparable_fingerprint`)."""
    from endofm.models.hub import comparable_fingerprint

    before = (old.get("inputs") or {}).get("pretrained")
    now = (record.get("inputs") or {}).get("pretrained")
    if not before or not now:
        return dict(old)
    return {**old, "inputs": {**old["inputs"], "pretrained": comparable_fingerprint(before, now)}}


def save_record(record: Mapping[str, Any], output: str | Path) -> Path:
    """Write ``record`` as ``config.yaml`` with the git commit."""
    return save_settings(record, Path(output) / RUN_RECORD_NAME)


def read_record(path: str | Path) -> dict[str, Any]:
    """A run's ``config.yaml`` as a plain dict, with the current names of renamed settings."""
    return renamed_to_current(OmegaConf.to_container(load_yaml(Path(path)), resolve=True))


def differing_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Dotted keys whose values differ (``key: old → new``), ignoring :data:`MAY_DIFFER` and
    keys the old record lacks (settings added to endofm since)."""
    before, after = flatten(old), flatten(new)
    return [f"{key}: {before[key]!r} → {after.get(key)!r}" for key in sorted(before.keys()
            | after.keys())
            if key in before and before[key] != after.get(key)
            and key.rsplit(".", 1)[-1] not in MAY_DIFFER]


def clear_run(output: Path, state_files: Sequence[str]) -> None:
    """Delete a run folder's training state (``--restart``)."""
    for pattern in (*state_files, *LOG_FILES):
        for found in output.glob(pattern):
            if found.is_dir():
                shutil.rmtree(found)
            else:
                found.unlink()


def find_record(checkpoint: str | Path) -> Path | None:
    """The ``config.yaml`` endofm wrote beside a model: in a model folder, else in the folder
    holding the checkpoint (a run folder). ``None`` when there is none."""
    checkpoint = Path(checkpoint)
    folders = ([checkpoint] if checkpoint.is_dir() else []) + [checkpoint.parent]
    for folder in folders:
        path = folder / RUN_RECORD_NAME
        if path.is_file() and GIT_LINE in path.read_text(encoding="utf-8", errors="replace"):
            return path
    return None


def trained_settings(record: str | Path) -> dict[str, Any]:
    """The settings of a run record, without its ``inputs`` and ``origin``."""
    return {k: v for k, v in read_record(record).items() if k not in ("inputs", ORIGIN)}


def record_origin(record: str | Path) -> dict[str, str] | None:
    """The ``origin`` of a run record (``{"command", "task"}``); ``None`` for a record written
    before runs recorded it."""
    origin = read_record(record).get(ORIGIN)
    return dict(origin) if isinstance(origin, Mapping) else None


def settings_conflicts(trained: Mapping[str, Any], given: Mapping[str, Any]) -> list[str]:
    """Given settings (``{"dotted.key": value}``) that contradict the ones a model was trained
    with; the training-only sections (optimiser, schedule, selection) and :data:`MAY_DIFFER`
    are not compared."""
    flat = flatten(trained)
    return [f"{key}: trained with {flat[key]!r}, given {value!r}"
            for key, value in sorted(given.items())
            if key in flat and flat[key] != value
            and key.split(".", 1)[0] not in TRAINING_SECTIONS
            and key.rsplit(".", 1)[-1] not in MAY_DIFFER]


def describe_init(model: Any, pretrained: str | Path) -> str:
    """One line on what ``pretrained`` initialised in ``model`` (whose backbone parameters are
    ``backbone.*``): the checkpoint's layout, the tensors loaded and the model tensors left
    newly initialised."""
    from endofm.models import load_checkpoint

    ckpt = load_checkpoint(pretrained)
    keys = list(model.state_dict())
    loaded = {f"backbone.{k}" for k in ckpt.state_dict} & set(keys)
    fresh = [k for k in keys if k not in loaded]
    return (f"pretrained weights {ckpt.path} (layout {ckpt.layout}): {len(loaded)} tensors "
            f"loaded into the backbone, {len(fresh)} newly initialised"
            + (f" ({short_list(fresh, 4)})" if fresh else ""))
