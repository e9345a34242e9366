"""Downstream tasks on one engine, one package per task, each registered in the task registry
(:mod:`endofm.tasks.registry`). ``TASKS`` maps a task name to its class (imported on access);
the CLI's ``finetune``, ``evaluate`` and ``predict`` commands offer every registered task."""

from __future__ import annotations

from typing import Any

from endofm.tasks.registry import (
    TASKS,
    TaskSpec,
    get_task,
    register_task,
    task_for_kind,
    task_names,
    task_specs,
)

__all__ = ["TASKS", "Task", "TaskSpec", "get_task", "register_task", "task_for_kind",
           "task_names", "task_specs"]


def __getattr__(name: str) -> Any:
    if name == "Task":  # the interface pulls in torch: imported on first use
        from endofm.tasks.base import Task

        return Task
    raise AttributeError(f"module 'endofm.tasks' has no attribute {name!r}")
