"""The ``folders`` format (classification): one folder per class, as torchvision's
ImageFolder.

``DIR/<class name>/<video>`` where a video is a video file, a folder of frames or a single
image; optionally ``DIR/{train,val,test}/<class name>/<video>`` (a class missing from one
split is fine; the classes are the union, sorted by name, or the order of
``data.classes_file`` / ``DIR/classes.yaml``). Other files are errors naming them.
"""

from __future__ import annotations

from pathlib import Path

from endofm.data.datasets.records import DatasetError, VideoItem, report
from endofm.data.formats.classes import ClassSet, find_classes_file, read_classes_file
from endofm.data.formats.records import LabelledData
from endofm.data.formats.splits import SPLIT_ALIASES, SPLITS, plan_from_files
from endofm.data.images import is_mask_like
from endofm.data.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

SPLIT_FOLDERS = set(SPLITS) | set(SPLIT_ALIASES)


def split_roots(root: Path) -> list[tuple[str | None, Path]]:
    """``[(split, folder holding class folders)]``: the split folders when ``root`` has any,
    else ``root`` itself (split not given)."""
    folders = [p for p in sorted(root.iterdir()) if p.is_dir()]
    named = [p for p in folders if p.name.lower() in SPLIT_FOLDERS]
    if not named:
        return [(None, root)]
    return [(SPLIT_ALIASES.get(p.name.lower(), p.name.lower()), p) for p in named]


def is_video_entry(path: Path) -> bool:
    """A video file, an image, or a folder of frames."""
    if path.is_dir():
        return any(p.suffix.lower() in IMAGE_EXTENSIONS for p in path.iterdir())
    suffix = path.suffix.lower()
    return suffix in VIDEO_EXTENSIONS or (suffix in IMAGE_EXTENSIONS and not is_mask_like(path))


def read_folders(root: str | Path, classes_file: str | None = None,
                 errors: list[dict[str, str]] | None = None,
                 known: ClassSet | None = None) -> LabelledData:
    """Every video under the class folders of ``root`` (module docstring). A file that is
    not a video, image or frame folder, or a class folder not in the classes file, is an
    error (with ``errors`` given: reported there and left out). ``known``: a trained model's
    classes, which the folder names must be among."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "folders format: not a directory")
    found: list[tuple[str | None, str, Path]] = []
    for split, base in split_roots(root):
        for folder in sorted(p for p in base.iterdir() if p.is_dir() and p.name != "splits"):
            for entry in sorted(folder.iterdir()):
                if entry.name.startswith("."):
                    continue
                if is_video_entry(entry):
                    found.append((split, folder.name, entry))
                else:
                    report(errors, entry, "not a video file, image or frame folder")
        for stray in sorted(p for p in base.iterdir() if p.is_file()):
            if stray.suffix.lower() in VIDEO_EXTENSIONS | IMAGE_EXTENSIONS:
                report(errors, stray, "video or image outside a class folder")
    names = sorted({name for _, name, _ in found})
    declared_file = find_classes_file(root, classes_file)
    if known is not None:
        classes = known
    elif declared_file is not None:
        declared = read_classes_file(declared_file)
        classes = ClassSet(tuple(declared), tuple(int(v) if isinstance(v, int) else i
                                                  for i, v in enumerate(declared.values())))
    else:
        classes = ClassSet.named(names)
    items, tags = [], []
    for split, name, entry in found:
        if name not in classes.names:
            report(errors, entry.parent, f"class folder {name!r} is not one of the classes "
                   f"({', '.join(classes.names)})")
            continue
        items.append(VideoItem(entry, classes.index(name)))
        tags.append(split)
    if not items:
        raise DatasetError(root, "no videos in class folders (want DIR/<class>/<video>)")
    plan = plan_from_files(items, lambda it: str(it.path), root, tags)
    return LabelledData(plan, classes, False, errors if errors is not None else [])
