"""PolypDiag reader: ``splits/{train,val}.txt`` (``path<sep>label``) + ``videos/``."""

from __future__ import annotations

from pathlib import Path

from endofm.data.datasets.records import VideoItem, report


def split_file(root: Path, split: str) -> Path:
    """``root/splits/{split}.txt``, or ``split`` itself when it names an existing file."""
    candidate = Path(split)
    if candidate.suffix == ".txt" and candidate.is_file():
        return candidate
    return root / "splits" / f"{split}.txt"


def parse_line(line: str) -> tuple[str, str]:
    """``(path, label)`` from ``path,label`` or ``path<whitespace>label`` (last field = label)."""
    if "," in line:
        path, _, label = line.rpartition(",")
    else:
        parts = line.rsplit(maxsplit=1)
        path, label = (parts[0], parts[1]) if len(parts) == 2 else ("", line)
    return path.strip(), label.strip()


def resolve_video(root: Path, name: str) -> Path:
    """A split entry's video: absolute, else under ``root/videos``, else under ``root``."""
    path = Path(name)
    if path.is_absolute():
        return path
    under_videos = root / "videos" / path
    if not under_videos.exists() and (root / path).exists():
        return root / path
    return under_videos


def read_polypdiag(root: str | Path, split: str, errors: list[dict[str, str]] | None = None,
                   num_classes: int = 2) -> list[VideoItem]:
    """Videos and labels of ``split`` (``"train"``/``"val"`` or a split file path).

    Separators: a comma, or whitespace (the last field is the label). Blank lines are
    ignored. A malformed line, a label outside ``[0, num_classes)`` (PolypDiag: 0 normal,
    1 abnormal) or a listed video that does not exist is an error (see
    :func:`endofm.data.datasets.records.report`).
    """
    root = Path(root)
    listing = split_file(root, split)
    if not listing.is_file():
        raise FileNotFoundError(f"{listing}: PolypDiag split file not found")
    items = []
    for number, line in enumerate(listing.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        name, label = parse_line(line.strip())
        if not name or not label.lstrip("-").isdigit():
            report(errors, f"{listing}:{number}", f"malformed line {line!r} (want path,label)")
            continue
        if not 0 <= int(label) < num_classes:
            report(errors, f"{listing}:{number}",
                   f"label {label} outside [0, {num_classes}) in line {line!r}")
            continue
        video = resolve_video(root, name)
        if not video.is_file():
            report(errors, video, f"video listed in {listing}:{number} does not exist")
            continue
        items.append(VideoItem(path=video, label=int(label)))
    return items
