"""Named classes of a labelled dataset, in the order a model's outputs follow.

A :class:`ClassSet` lists each class's ``name`` and the ``id`` the dataset gives it (a COCO
category id, a mask's grey value, an integer label). Its position in the list is the model's
index for it. It travels into a fine-tuned model's ``config.json`` (``"classes"``), its
``metrics.json``, plots and legends (:meth:`ClassSet.to_json` / :meth:`ClassSet.from_json`).

``classes.yaml`` (image masks, or any format's ``data.classes_file``) maps names to values::

    background: 0          # index / grey-value masks: name: value
    liver: 21
    grasper: [255, 0, 0]   # colour masks: name: [r, g, b]

A CVAT / Pascal VOC ``labelmap.txt`` (``name:r,g,b:parts:actions`` lines, ``#`` comments)
declares colour mask classes the same way (:func:`read_labelmap`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from endofm.data.datasets.records import DatasetError

CLASSES_FILE = "classes.yaml"
LABELMAP_FILE = "labelmap.txt"


@dataclass(frozen=True)
class ClassSet:
    """Class names and dataset ids in model order; ``values`` are the mask encodings (grey
    value ``int`` or colour ``(r, g, b)``) where the data is masks, else ``None``."""

    names: tuple[str, ...]
    ids: tuple[int, ...]
    values: tuple[int | tuple[int, int, int], ...] | None = None

    def __post_init__(self) -> None:
        if len(self.names) != len(self.ids):
            raise ValueError(f"{len(self.names)} class names for {len(self.ids)} ids")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"class names repeat: {list(self.names)}")

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def numbered(cls, count: int) -> ClassSet:
        """``count`` classes named ``"0"`` … by their index."""
        return cls(tuple(str(i) for i in range(count)), tuple(range(count)))

    @classmethod
    def named(cls, names: Sequence[str]) -> ClassSet:
        return cls(tuple(names), tuple(range(len(names))))

    def index(self, name: str) -> int:
        return self.names.index(name)

    def to_json(self) -> list[dict[str, Any]]:
        """``[{"index", "id", "name"}]`` (plus ``"value"`` for mask classes)."""
        rows = [{"index": i, "id": int(c), "name": n}
                for i, (c, n) in enumerate(zip(self.ids, self.names, strict=True))]
        if self.values is not None:
            for row, value in zip(rows, self.values, strict=True):
                row["value"] = list(value) if isinstance(value, tuple) else int(value)
        return rows

    @classmethod
    def from_json(cls, rows: Sequence[Mapping[str, Any]]) -> ClassSet:
        rows = sorted(rows, key=lambda r: int(r["index"]))
        values = None
        if rows and all("value" in r for r in rows):
            values = tuple(tuple(r["value"]) if isinstance(r["value"], list) else int(r["value"])
                           for r in rows)
        return cls(tuple(str(r["name"]) for r in rows), tuple(int(r["id"]) for r in rows),
                   values)

    def check_count(self, num_classes: int | None, key: str, offset: int = 0) -> None:
        """A ``num_classes`` setting that disagrees with the data is an error (``None``: the
        data decides). ``offset``: outputs the model has beyond the classes (none so far)."""
        if num_classes is not None and num_classes != len(self) + offset:
            raise ValueError(f"{key}={num_classes} disagrees with the data, which has "
                             f"{len(self)} classes ({', '.join(self.names)}); drop the setting "
                             "(the head is sized from the data) or fix the data")

    def check_same(self, trained: ClassSet, where: str) -> None:
        """Data read for a model trained on ``trained`` must name the same classes."""
        if self.names != trained.names:
            raise ValueError(f"{where}: the data's classes {list(self.names)} are not the "
                             f"model's {list(trained.names)}")


def parse_value(name: str, value: Any, source: Path) -> int | tuple[int, int, int]:
    """One ``classes.yaml`` value: an integer 0-255 or ``[r, g, b]``."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, int) and 0 <= value <= 65535:
        return value
    if (isinstance(value, list) and len(value) == 3
            and all(isinstance(v, int) and 0 <= v <= 255 for v in value)):
        return (value[0], value[1], value[2])
    raise DatasetError(source, f"class {name!r}: value {value!r} is neither a grey/index value "
                       "nor [r, g, b]")


def read_classes_file(path: str | Path) -> dict[str, int | tuple[int, int, int]]:
    """``{name: value}`` of a ``classes.yaml`` (insertion order kept); a list of names means
    the values 0, 1, … in that order."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, "classes file does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DatasetError(path, f"not valid YAML ({exc})") from exc
    if isinstance(raw, list):
        raw = {str(name): i for i, name in enumerate(raw)}
    if not isinstance(raw, dict) or not raw:
        raise DatasetError(path, "expected a mapping 'name: value' (or a list of names)")
    parsed = {str(k): parse_value(str(k), v, path) for k, v in raw.items()}
    kinds = {isinstance(v, tuple) for v in parsed.values()}
    if len(kinds) > 1:
        raise DatasetError(path, "mixes grey values and [r, g, b] colours")
    values = list(parsed.values())
    if len(set(values)) != len(values):
        raise DatasetError(path, f"two classes share a value: {parsed}")
    return parsed


def read_labelmap(path: str | Path) -> dict[str, tuple[int, int, int]]:
    """``{name: (r, g, b)}`` of a CVAT / Pascal VOC ``labelmap.txt``, in its order: one
    ``name:r,g,b:parts:actions`` line per class (only the first two fields are read), blank
    lines and ``#`` comments skipped. A line that does not parse is an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, "labelmap file does not exist")
    declared: dict[str, tuple[int, int, int]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split(":")
        channels = fields[1].split(",") if len(fields) > 1 else []
        name = fields[0].strip()
        if not name or len(channels) != 3 or not all(c.strip().isdigit() for c in channels):
            raise DatasetError(f"{path}:{number}", f"{line.strip()!r} is not a labelmap line "
                               "'name:r,g,b:parts:actions'")
        if name in declared:
            raise DatasetError(f"{path}:{number}", f"class {name!r} is declared twice")
        declared[name] = parse_value(name, [int(c) for c in channels], path)  # type: ignore
    if not declared:
        raise DatasetError(path, "labelmap declares no class")
    if len(set(declared.values())) != len(declared):
        raise DatasetError(path, f"two classes share a colour: {declared}")
    return declared


def read_declared(root: Path, setting: str | None) -> dict[str, Any] | None:
    """The classes a dataset declares, ``{name: value}`` in their order: ``data.classes_file``
    (``setting``), else ``classes.yaml`` or a CVAT / VOC ``labelmap.txt`` in ``root``, read as
    a labelmap when its name ends in ``.txt``; ``None`` without any."""
    found = find_classes_file(root, setting)
    if found is None and (root / LABELMAP_FILE).is_file():
        found = root / LABELMAP_FILE
    if found is None:
        return None
    return read_labelmap(found) if found.suffix.lower() == ".txt" else read_classes_file(found)


def find_classes_file(root: Path, setting: str | None) -> Path | None:
    """``data.classes_file`` when set, else ``classes.yaml`` in the data folder, if any."""
    if setting:
        return Path(setting)
    folder = root if root.is_dir() else root.parent
    found = folder / CLASSES_FILE
    return found if found.is_file() else None
