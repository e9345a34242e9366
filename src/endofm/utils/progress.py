"""One progress display for every long command.

On a terminal it is a tqdm bar on stderr; otherwise (a log file, a pipe, a batch job) it logs a
plain INFO line (logger ``endofm.utils.progress``) every ``ENDOFM_PROGRESS_SECONDS`` seconds
(default 30) and one when it finishes, so a log holds a few readable lines instead of
carriage-return spam, and a program embedding endofm decides where they go. ``--quiet``
(:func:`set_quiet`), ``ENDOFM_QUIET=1`` or ``enabled=False`` (a config's ``progress`` setting)
turn it off::

    for item in progress(items, desc="evaluate", unit="video"):
        ...
    with progress(total=n, desc="synth") as bar:
        bar.update(); bar.set_postfix(loss=0.1)
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

logger = logging.getLogger(__name__)

_QUIET = False


def set_quiet(quiet: bool) -> None:
    """Turn every progress display of this process off (``--quiet``) or back on."""
    global _QUIET
    _QUIET = bool(quiet)


def is_quiet() -> bool:
    """Whether :func:`set_quiet` or ``ENDOFM_QUIET`` (a true value) asked for quiet."""
    env = os.environ.get("ENDOFM_QUIET", "").strip().lower()
    return _QUIET or env not in ("", "0", "false", "no")


def progress_interval() -> float:
    """Seconds between plain progress lines (``ENDOFM_PROGRESS_SECONDS``, default 30)."""
    return float(os.environ.get("ENDOFM_PROGRESS_SECONDS", "30"))


class Progress:
    """Counts steps of a long task and shows them (a bar, logged plain lines, or nothing)."""

    def __init__(self, iterable: Iterable | None = None, total: int | None = None,
                 desc: str = "", unit: str = "it", initial: int = 0, enabled: bool = True,
                 stream: TextIO | None = None) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.stream = stream or sys.stderr
        self.postfix: dict[str, Any] = {}
        self.enabled = enabled and not is_quiet()
        self._bar = None
        self._start = self._last = time.monotonic()
        self._initial = initial
        if self.enabled and is_terminal(self.stream):
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, initial=initial,
                             file=self.stream, leave=False, dynamic_ncols=True)

    def __iter__(self) -> Iterator:
        if self.iterable is None:
            raise TypeError("Progress without an iterable cannot be iterated; call update()")
        try:
            for item in self.iterable:
                yield item
                self.update()
        except BaseException:  # left early (break, an error, Ctrl-C): no final line
            self.close(finished=False)
            raise
        self.close()

    def __len__(self) -> int:
        return self.total or 0

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type | None, *exc: object) -> None:
        self.close(finished=exc_type is None)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.enabled and time.monotonic() - self._last >= progress_interval():
            self._log_line()

    def set_postfix(self, **values: Any) -> None:
        """Figures shown after the count (``loss=0.31``)."""
        self.postfix = values
        if self._bar is not None:
            self._bar.set_postfix(values, refresh=False)

    def close(self, finished: bool = True) -> None:
        """Remove the bar, or log the final line (not when the task failed)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.enabled and finished and self.n > self._initial:
            self._log_line(done=True)
        self.enabled = False

    def _log_line(self, done: bool = False) -> None:
        now = time.monotonic()
        self._last = now
        elapsed = now - self._start
        count = f"{self.n}/{self.total}" if self.total else str(self.n)
        rate = (self.n - self._initial) / elapsed if elapsed > 0 else 0.0
        extra = "".join(f" {k}={v}" for k, v in self.postfix.items())
        state = "done" if done else f"{100 * self.n / self.total:.0f}%" if self.total else ""
        logger.info("%s: %s %s %s [%s, %.2f %s/s]%s", self.desc, count, self.unit, state,
                    _clock(elapsed), rate, self.unit, extra)


def progress(iterable: Iterable | None = None, **kwargs: Any) -> Progress:
    """A :class:`Progress` over ``iterable`` (or a counter with ``total=``)."""
    return Progress(iterable, **kwargs)


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal (a bar can redraw itself there)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"
