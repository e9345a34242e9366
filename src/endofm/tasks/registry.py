"""The task registry: every downstream task is one :class:`TaskSpec`.

A task is a package under ``endofm/tasks/`` whose ``__init__.py`` registers its spec::

    register_task(TaskSpec(
        name="classification", kind="classifier",
        task="endofm.tasks.classification.task:ClassificationTask",
        formats=("polypdiag", "manifest", "folders"), ...))

The registry finds the packages itself (every sub-package of ``endofm.tasks`` is imported the
first time the registry is read), so adding a task edits nothing outside its package. The CLI's
``finetune`` / ``evaluate`` / ``predict`` sub-commands, ``endofm.load_task_model``, the
recognition of run folders and model folders and ``endofm info`` all read it.

A spec is light: what a task needs at run time (its :class:`~endofm.tasks.base.Task` class with
the config schema, model builder, data reading, loss, metrics and selection metric; its
predictor and report sections) is named by import path (``"module:attribute"``) and imported on
first use, so building the command-line parser imports no torch.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from endofm.tasks.base import EngineConfig, Task


def load_object(path: str) -> Any:
    """The object an import path ``"package.module:attribute"`` names."""
    module, sep, attribute = path.partition(":")
    if not sep or not module or not attribute:
        raise ValueError(f"import path {path!r} is not 'package.module:attribute'")
    try:
        return getattr(importlib.import_module(module), attribute)
    except AttributeError as exc:
        raise ImportError(f"module {module!r} has no attribute {attribute!r} "
                          f"(import path {path!r})") from exc


# what ``endofm predict``'s --frame-step and --stride mean, unless a task says otherwise
WINDOW_HELP = ("step between a window's frames, in frames or seconds (0.5s)",
               "step between window starts (default: adjacent windows)")


@dataclass(frozen=True)
class TaskSpec:
    """One downstream task.

    Args:
        name: the task's name on the command line (``endofm finetune NAME``) and in run records.
        kind: the ``kind`` its saved model folders record (``config.json`` and the
            ``model.safetensors`` header), by which a model folder is recognised.
        task: import path of its :class:`~endofm.tasks.base.Task` subclass (config schema,
            model builder, loss, evaluation metrics and selection metric, model saving and
            loading).
        summary: one line for ``endofm finetune --help`` / ``endofm evaluate --help``.
        formats: the data formats its ``read_items`` reads (``data.format``, ``--format``;
            ``auto`` detects one of them); the first is the task's reference dataset's.
        predictor: import path of its whole-video predictor class (``endofm predict``).
        report: import path of the class that writes its per-video artefacts and report
            sections in ``endofm predict``.
        predict_help: one line for ``endofm predict --help``.
        window_help: what ``endofm predict NAME``'s ``--frame-step`` and ``--stride`` mean for
            the task.
        released_layouts: checkpoint layouts (:func:`endofm.models.load_checkpoint`) of single
            files its ``load_model`` reads besides its own model folders (the release's
            PolypDiag fine-tune).
        cli: import path of a (light) module whose ``add_finetune(sub)``,
            ``add_evaluate(sub)`` and ``add_predict(sub)`` add the task's own sub-commands,
            for a task whose commands take other options than the common ones; ``None``: the
            common ``finetune`` / ``evaluate`` / ``predict`` sub-commands.
        live: import path of its ``endofm stream`` factory
            (``factory(task_model, fps, class_names, **options)`` returning a
            :class:`endofm.deploy.live_tasks.LiveTask`); ``None``: the task does not stream.
        sample: import path of a function ``(out_dir: Path, seed: int) -> Path`` writing a
            small synthetic dataset the task reads (the tests' end-to-end data; seconds to
            write and to train on).
    """

    name: str
    kind: str
    task: str
    summary: str
    formats: tuple[str, ...] = ()
    predictor: str | None = None
    report: str | None = None
    predict_help: str = ""
    window_help: tuple[str, str] = WINDOW_HELP
    released_layouts: tuple[str, ...] = ()
    cli: str | None = None
    live: str | None = None
    sample: str | None = None

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"task name {self.name!r} must be an identifier")
        if self.cli is None and (self.predictor is None or self.report is None):
            raise ValueError(f"task {self.name!r}: without its own `cli` module it needs a "
                             "predictor and a report for `endofm predict`")

    def task_class(self) -> type[Task]:
        """The task's :class:`~endofm.tasks.base.Task` subclass (imports it)."""
        return load_object(self.task)

    def config_schema(self) -> type[EngineConfig]:
        """The task's config dataclass (engine sections + the task's own)."""
        return self.task_class().config_class


_REGISTRY: dict[str, TaskSpec] = {}
_discovered = False


def _discover() -> None:
    """Import every task package under ``endofm.tasks`` once (each registers itself)."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    import endofm.tasks

    for module in pkgutil.iter_modules(endofm.tasks.__path__):
        if module.ispkg:
            importlib.import_module(f"endofm.tasks.{module.name}")


def register_task(spec: TaskSpec) -> TaskSpec:
    """Add ``spec`` to the registry; a name or kind already taken by another spec is an error.
    Returns ``spec``."""
    for other in _REGISTRY.values():
        if other.name != spec.name and other.kind == spec.kind:
            raise ValueError(f"task {spec.name!r}: kind {spec.kind!r} is already task "
                             f"{other.name!r}'s")
    if spec.name in _REGISTRY and _REGISTRY[spec.name] != spec:
        raise ValueError(f"a task named {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def unregister_task(name: str) -> None:
    """Remove a registered task (a plug-in's, or one a test registered)."""
    _discover()
    if _REGISTRY.pop(name, None) is None:
        raise ValueError(f"no task named {name!r} is registered")


def task_specs() -> tuple[TaskSpec, ...]:
    """Every registered task, by name (registration order depends on what was imported
    first)."""
    _discover()
    return tuple(sorted(_REGISTRY.values(), key=lambda spec: spec.name))


def task_names() -> tuple[str, ...]:
    """The names of every registered task."""
    return tuple(spec.name for spec in task_specs())


def get_task(name: str) -> TaskSpec:
    """The spec of task ``name``; an unknown name is an error listing the registered ones."""
    _discover()
    if name not in _REGISTRY:
        raise ValueError(f"unknown task {name!r}; registered tasks: {', '.join(task_names())}")
    return _REGISTRY[name]


def task_for_kind(kind: object) -> TaskSpec | None:
    """The task whose saved models record ``kind`` (``"classifier"``), else ``None``."""
    return next((spec for spec in task_specs() if spec.kind == kind), None)


class _TaskClasses(Mapping[str, "type[Task]"]):
    """``TASKS``: task name → its :class:`~endofm.tasks.base.Task` class, imported on access."""

    def __getitem__(self, name: str) -> type[Task]:
        if name not in task_names():
            raise KeyError(name)
        return get_task(name).task_class()

    def __iter__(self) -> Iterator[str]:
        return iter(task_names())

    def __len__(self) -> int:
        return len(task_specs())


TASKS: Mapping[str, type[Task]] = _TaskClasses()
