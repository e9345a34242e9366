"""Video classification (PolypDiag) on the shared downstream engine."""

from endofm.tasks.classification.task import ClassificationTask

__all__ = ["ClassificationTask"]
