"""What a command's log messages look like on the terminal.

Library modules log through ``logging.getLogger(__name__)`` and add no handlers; the ``endofm``
command attaches one handler to the ``endofm`` logger (:func:`setup_logging`):

- default: INFO and above, INFO as the bare message, others as ``warning: message``;
- ``--quiet`` or ``ENDOFM_QUIET=1``: warnings and errors only;
- ``--debug`` or ``ENDOFM_DEBUG=1``: DEBUG and above, each as ``level logger.name: message``.

Python warnings (``warnings.warn``, the library's and its dependencies') read the same way,
``warning: message`` (with their category and source line under ``--debug``); only their format
changes, so a caller that records them (``warnings.catch_warnings(record=True)``) still can.

Messages go to stderr (stdout holds a command's results); on a terminal they are written through
``tqdm.write`` so they appear above a progress bar instead of breaking it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Iterator

from endofm.utils.progress import is_terminal

LIBRARY_LOGGER = "endofm"


class ConsoleFormatter(logging.Formatter):
    """INFO as ``message``, other levels as ``level: message``; with ``debug``, every record as
    ``level name: message`` (the logger's name says which module spoke)."""

    def __init__(self, debug: bool = False) -> None:
        super().__init__()
        self.debug = debug

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        level = record.levelname.lower()
        if self.debug:
            text = f"{level} {record.name}: {message}"
        elif record.levelno == logging.INFO:
            text = message
        else:
            text = f"{level}: {message}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class ConsoleHandler(logging.Handler):
    """Writes each record to the current ``sys.stderr`` (looked up per record, so a redirected
    stderr is followed), through ``tqdm.write`` on a terminal."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            stream = sys.stderr
            if is_terminal(stream):
                from tqdm import tqdm

                tqdm.write(text, file=stream)
            else:
                stream.write(text + "\n")
                stream.flush()
        except Exception:  # logging's contract: a failing handler reports, never raises
            self.handleError(record)


@contextlib.contextmanager
def warnings_as_lines(debug: bool) -> Iterator[None]:
    """While inside, Python warnings print as ``warning: message``, or with ``debug`` as
    ``warning: Category at file:line: message`` (``warnings.formatwarning``, restored after)."""

    def format_warning(message: Warning | str, category: type[Warning], filename: str,
                       lineno: int, line: str | None = None) -> str:
        where = f"{category.__name__} at {filename}:{lineno}: " if debug else ""
        return f"warning: {where}{message}\n"

    saved, warnings.formatwarning = warnings.formatwarning, format_warning
    try:
        yield
    finally:
        warnings.formatwarning = saved


def setup_logging(quiet: bool, debug: bool) -> None:
    """Attach the console handler to the ``endofm`` logger (replacing one attached before) and
    set its level: DEBUG with ``debug``, else WARNING with ``quiet``, else INFO."""
    logger = logging.getLogger(LIBRARY_LOGGER)
    for handler in [h for h in logger.handlers if isinstance(h, ConsoleHandler)]:
        logger.removeHandler(handler)
    handler = ConsoleHandler()
    handler.setFormatter(ConsoleFormatter(debug))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)
