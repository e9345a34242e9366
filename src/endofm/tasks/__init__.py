"""Downstream tasks on one engine. ``TASKS`` maps a task name to its class; the CLI's
``finetune`` and ``evaluate`` commands offer every registered task."""

from endofm.tasks.base import Task
from endofm.tasks.classification import ClassificationTask
from endofm.tasks.detection.task import DetectionTask
from endofm.tasks.phase.task import PhaseTask
from endofm.tasks.segmentation.task import SegmentationTask

TASKS: dict[str, type[Task]] = {
    "classification": ClassificationTask,
    "segmentation": SegmentationTask,
    "detection": DetectionTask,
    "phase": PhaseTask,
}

__all__ = ["TASKS", "Task"]
