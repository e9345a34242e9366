"""The CLI's one error path: every anticipated failure becomes one ``endofm: error:`` line.

A command handler raises; :func:`run_handler` turns the exception into

    endofm: error: <what>: <why>
      <at most MAX_DETAIL_LINES lines of detail>

and an exit status (1 for errors, 130 for Ctrl-C; argparse exits with 2 for usage errors).
Tracebacks are printed only with ``--debug`` or ``ENDOFM_DEBUG=1``. Anticipated errors are
``OSError`` (files, permissions, a full disk), ``ValueError`` (bad settings, data and
checkpoints: ``ConfigError``, ``DatasetError``, ``CheckpointError``) and ``RuntimeError``
(``VideoError``, a non-finite loss, device problems); anything else is reported as an internal
error, still in one line.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import traceback
from collections.abc import Callable

MAX_DETAIL_LINES = 10
MAX_LINE_CHARS = 600
INTERRUPTED = "interrupted — re-run the same command to resume"

# Hints for the errors a user can fix (by errno).
OS_HINTS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.EEXIST: "already exists (a file where a folder is needed?)",
    errno.ENOTDIR: "a path component is a file, not a folder",
    errno.EISDIR: "is a folder, not a file",
    errno.ENOENT: "no such file or folder",
}


def debug_requested(argv: list[str]) -> bool:
    """``--debug`` on the command line or ``ENDOFM_DEBUG`` set to a true value."""
    env = os.environ.get("ENDOFM_DEBUG", "").strip().lower()
    return "--debug" in argv or env not in ("", "0", "false", "no")


def format_error(exc: BaseException) -> str:
    """The one-line message (plus at most :data:`MAX_DETAIL_LINES` detail lines) for ``exc``."""
    if isinstance(exc, OSError) and exc.strerror:
        why = OS_HINTS.get(exc.errno, exc.strerror)
        where = exc.filename if exc.filename is not None else None
        return f"{where}: {why}" if where is not None else why
    text = str(exc).strip() or type(exc).__name__
    if not isinstance(exc, (OSError, ValueError, RuntimeError)):
        text = (f"internal error ({type(exc).__name__}): {text} — please report it; "
                "re-run with --debug for the traceback")
    return clip_lines(text)


def clip_lines(text: str, max_lines: int = MAX_DETAIL_LINES, max_chars: int = MAX_LINE_CHARS
               ) -> str:
    """The first line of ``text`` and at most ``max_lines`` more, each at most ``max_chars``
    characters; says how much was left out."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    head, detail = lines[0], lines[1:]
    shown = [_clip(head, max_chars)] + ["  " + _clip(line.strip(), max_chars)
                                        for line in detail[:max_lines]]
    if len(detail) > max_lines:
        shown.append(f"  … {len(detail) - max_lines} more lines (use --debug for all)")
    return "\n".join(shown)


def _clip(line: str, max_chars: int) -> str:
    if len(line) <= max_chars:
        return line
    return f"{line[:max_chars]} … ({len(line) - max_chars} more characters)"


def run_handler(func: Callable[[argparse.Namespace], int | None], args: argparse.Namespace,
                debug: bool) -> int:
    """Run a command handler; report its failure on stderr and return the exit status."""
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print(f"\nendofm: {INTERRUPTED}", file=sys.stderr)
        return 130
    except Exception as exc:  # the one place every failure is turned into a message
        if debug:
            traceback.print_exc()
        print(f"endofm: error: {format_error(exc)}", file=sys.stderr)
        return 1
