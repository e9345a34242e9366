"""CVC-12k (CVC-ClinicVideoDB) reader: ``CVC-ClinicDB/{Original,Ground Truth}/{i}.tif`` with
sequences given as ``first_frame length`` lines (1-based frame numbers).

Split protocols:

- ``"files"``: ``train.txt`` / ``test.txt`` in ``split_dir`` (default: the dataset root);
- ``"release"``: the 20 training / 9 test sequences hard-coded in the original release. 7 of
  its 9 test sequences are training sequences too, so it warns;
- ``"leakfree"``: the release's 9 test sequences for testing and the 13 release training
  sequences that are not among them for training: no sequence is in both.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image

from endofm.data.datasets.records import CvcSequence, report

RELEASE_TRAIN = (
    (104, 23), (529, 18), (448, 19), (26, 25), (343, 21), (178, 22), (429, 19), (200, 6),
    (127, 25), (253, 25), (364, 20), (592, 21), (228, 25), (68, 11), (467, 12), (206, 22),
    (79, 25), (479, 25), (51, 17), (572, 20),
)
RELEASE_TEST = ((51, 17), (318, 25), (429, 19), (1, 25), (178, 22), (253, 25), (343, 21),
                (68, 11), (200, 6))
LEAKFREE_TRAIN = tuple(r for r in RELEASE_TRAIN if r not in RELEASE_TEST)
PROTOCOLS = ("files", "release", "leakfree")


def image_dirs(root: Path) -> tuple[Path, Path]:
    """``(Original, Ground Truth)`` folders under ``root/CVC-ClinicDB`` (or ``root``)."""
    base = root / "CVC-ClinicDB" if (root / "CVC-ClinicDB").is_dir() else root
    return base / "Original", base / "Ground Truth"


def read_ranges(listing: Path, errors: list[dict[str, str]] | None = None
                ) -> list[tuple[int, int]]:
    """``(first_frame, length)`` pairs of a split file; blank lines are ignored."""
    if not listing.is_file():
        raise FileNotFoundError(f"{listing}: CVC split file not found")
    ranges = []
    for number, line in enumerate(listing.read_text().splitlines(), start=1):
        fields = line.replace(",", " ").split()
        if not fields:
            continue
        if len(fields) < 2 or not (fields[0].isdigit() and fields[1].isdigit()) \
                or int(fields[1]) < 1:
            report(errors, f"{listing}:{number}", f"malformed line {line!r} "
                   "(want 'first_frame length')")
            continue
        ranges.append((int(fields[0]), int(fields[1])))
    return ranges


def split_ranges(root: Path, split: str, protocol: str, split_dir: Path | None,
                 errors: list[dict[str, str]] | None) -> list[tuple[int, int]]:
    """The ``(first, length)`` sequences of ``split`` (``train``/``test``) under ``protocol``."""
    if split not in ("train", "test"):
        raise ValueError(f"unknown CVC split {split!r}; use 'train' or 'test'")
    if protocol == "files":
        return read_ranges((split_dir or root) / f"{split}.txt", errors)
    if protocol == "release":
        warnings.warn("the release's CVC-12k split is leaky: 7 of its 9 test sequences "
                      "(first frames 51, 429, 178, 253, 343, 68, 200) are also training "
                      "sequences; use protocol='leakfree' for an honest test score",
                      UserWarning, stacklevel=3)
        return list(RELEASE_TRAIN if split == "train" else RELEASE_TEST)
    if protocol == "leakfree":
        return list(LEAKFREE_TRAIN if split == "train" else RELEASE_TEST)
    raise ValueError(f"unknown CVC protocol {protocol!r}; choose one of {PROTOCOLS}")


def check_pair(frame: Path, mask: Path, errors: list[dict[str, str]] | None) -> bool:
    """True when both files exist, open as images and have the same size."""
    sizes = []
    for path, what in ((frame, "frame"), (mask, "mask")):
        if not path.is_file():
            report(errors, path, f"{what} file does not exist")
            return False
        try:
            with Image.open(path) as image:
                sizes.append(image.size)
        except OSError as exc:
            report(errors, path, f"unreadable {what} image ({exc})")
            return False
    if sizes[0] != sizes[1]:
        report(errors, mask, f"mask size {sizes[1][0]}x{sizes[1][1]} (WxH) differs from its "
               f"frame {frame} ({sizes[0][0]}x{sizes[0][1]})")
        return False
    return True


def read_cvc(root: str | Path, split: str = "train", protocol: str = "files",
             split_dir: str | Path | None = None,
             errors: list[dict[str, str]] | None = None) -> list[CvcSequence]:
    """Sequences of ``split`` (``"train"``/``"test"``) under ``protocol`` (module docstring).

    Each sequence is named ``"{first}+{length}"``. Every frame needs a mask of the same size;
    a missing or mismatched pair is an error (with ``errors`` given: that frame is left out).
    """
    root = Path(root)
    original, truth = image_dirs(root)
    if not original.is_dir():
        raise FileNotFoundError(f"{original}: CVC frame folder not found")
    ranges = split_ranges(root, split, protocol, Path(split_dir) if split_dir else None, errors)
    sequences = []
    for first, length in ranges:
        frames, masks = [], []
        for index in range(first, first + length):
            frame, mask = original / f"{index}.tif", truth / f"{index}.tif"
            if check_pair(frame, mask, errors):
                frames.append(frame)
                masks.append(mask)
        if frames:
            sequences.append(CvcSequence(name=f"{first}+{length}", frames=frames, masks=masks))
    return sequences
