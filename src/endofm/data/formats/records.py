"""What a format reader returns: the items with their splits, and the classes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from endofm.data.formats.classes import ClassSet
from endofm.data.formats.splits import SplitPlan

T = TypeVar("T")


@dataclass
class LabelledData(Generic[T]):
    """Every item a reader found (``plan`` knows their splits), the dataset's classes and
    whether items carry several labels each (``multi_label``). ``errors`` lists the items left
    out (``{"path", "reason"}``) when the reader was asked to collect rather than raise.
    ``masks``: how mask files decode (:class:`endofm.data.formats.masks.MaskCodec`) for
    segmentation data."""

    plan: SplitPlan[T]
    classes: ClassSet
    multi_label: bool = False
    errors: list[dict[str, str]] = field(default_factory=list)
    masks: Any = None
