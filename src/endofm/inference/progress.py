"""Progress for long runs: tqdm bars on a terminal, quiet lines in logs.

When stderr is not a terminal, a bar prints one line when it starts, about every
``every_s`` seconds, and when it closes (no carriage-return floods in log files).
"""

from __future__ import annotations

import sys
import time
from typing import Any

from tqdm import tqdm


class LineProgress:
    """The tqdm subset used here (``update``, ``set_postfix_str``, ``close``), printed as lines."""

    def __init__(self, total: int, desc: str, unit: str, every_s: float = 30.0) -> None:
        self.total, self.desc, self.unit, self.every_s = total, desc, unit, every_s
        self.n, self.postfix = 0, ""
        self.start = self.last = time.monotonic()
        self._print()

    def _print(self) -> None:
        extra = f" ({self.postfix})" if self.postfix else ""
        print(f"{self.desc}: {self.n}/{self.total} {self.unit}{extra}", file=sys.stderr,
              flush=True)

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            self._print()

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text

    def close(self) -> None:
        self._print()


class NoProgress:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, desc: str, unit: str, enabled: bool = True,
                 position: int = 0, leave: bool = True) -> Any:
    """A tqdm bar on a terminal, a :class:`LineProgress` otherwise, nothing when disabled."""
    if not enabled:
        return NoProgress()
    if sys.stderr.isatty():
        return tqdm(total=total, desc=desc, unit=unit, position=position, leave=leave,
                    dynamic_ncols=True)
    return LineProgress(total, desc, unit)
