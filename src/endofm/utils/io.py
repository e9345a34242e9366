"""Atomic file writes: a crash never leaves a half-written checkpoint, manifest or report.

Every write goes to a temporary file beside the target, is flushed to disk (``fsync``), gets
the permissions a plain ``open`` would give (``0666`` minus the umask, so ``0644`` by default —
not ``mkstemp``'s ``0600``) and is renamed into place; the folder is synced after the rename.
An ``OSError`` (a full disk, a read-only folder) names the target file, not the temporary one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO


def current_umask() -> int:
    """The process umask (read without changing it where /proc allows)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise _naming(exc, path) from exc
    try:
        write(tmp)
        _fsync_file(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        _remove(tmp)
        raise _naming(exc, path) from exc
    except BaseException:
        _remove(tmp)
        raise
    return path


def atomic_write_stream(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(file)`` on a binary file object; Python-level writes surface a full disk as
    ``OSError(ENOSPC)`` (C++ writers given a path report it as an unreadable ``RuntimeError``)."""

    def to_path(tmp: str) -> None:
        with open(tmp, "wb") as f:
            write(f)

    return atomic_write(path, to_path)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` through a temporary file and an atomic rename."""
    import torch

    return atomic_write_stream(path, lambda f: torch.save(obj, f))


def atomic_write_bytes(data: bytes, path: str | os.PathLike) -> Path:
    """Write ``data`` atomically."""
    return atomic_write_stream(path, lambda f: f.write(data))


def atomic_write_text(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` (UTF-8) atomically."""
    return atomic_write_bytes(text.encode("utf-8"), path)


def atomic_write_json(obj: Any, path: str | os.PathLike, indent: int = 2) -> Path:
    """Write ``obj`` as JSON atomically."""
    return atomic_write_text(json.dumps(obj, indent=indent, sort_keys=False) + "\n", path)


def _naming(exc: OSError, path: Path) -> OSError:
    """``exc`` re-raised with ``path`` as its file name (not the temporary file's)."""
    if exc.errno is None:
        return exc
    target = path if exc.filename is None or ".tmp" in str(exc.filename) else exc.filename
    return type(exc)(exc.errno, exc.strerror, str(target))


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # some platforms cannot open folders; the rename itself is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
