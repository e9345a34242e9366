"""The one guard of every output folder an inference command writes (``extract``, ``predict``,
``attention``).

``DIR/run.json`` records the command, the settings that change the outputs (compared on a
re-run), the runtime settings (recorded only: device, batch size, workers, compile) and, once
the run is through, its videos and errors. ``DIR/.records/<video>.json`` is written when a
video is through: a re-run into the same folder with the same settings skips the videos
recorded without an error and runs again those whose record holds one; a re-run with other
settings, or by another command, is refused in one line naming what differs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from endofm import __version__
from endofm.utils.io import atomic_write_json

RECORDS = ".records"
RUN_FILE = "run.json"


def plain(value: Any) -> Any:
    """``value`` as JSON would read it back (tuples → lists, paths → strings)."""
    return json.loads(json.dumps(value, default=str))


class RunFolder:
    """``output`` written by ``command`` (``"extract"``, ``"predict detection"``, …) with
    ``settings`` (what changes the outputs) and ``runtime`` (what does not)."""

    def __init__(self, output: str | Path, command: str, settings: Mapping[str, Any],
                 runtime: Mapping[str, Any] | None = None) -> None:
        self.output, self.command = Path(output), command
        self.settings, self.runtime = plain(dict(settings)), plain(dict(runtime or {}))

    @property
    def run_file(self) -> Path:
        return self.output / RUN_FILE

    def check(self) -> None:
        """Refuse a folder that another command, or other settings, wrote (no silent mix)."""
        if not self.run_file.is_file():
            return
        before = json.loads(self.run_file.read_text())
        command = before.get("command", self.command)
        if command != self.command:
            raise ValueError(f"{self.output} holds the outputs of `endofm {command}`, not "
                             f"`endofm {self.command}`; use another --output")
        old = before.get("settings", {})
        changed = sorted(k for k in set(old) | set(self.settings)
                         if old.get(k) != self.settings.get(k))
        if changed:
            diff = "; ".join(f"{k}: {old.get(k)!r} -> {self.settings.get(k)!r}"
                             for k in changed)
            raise ValueError(f"{self.output} holds outputs made with other settings ({diff}); "
                             "use another --output or the same settings")

    def record_path(self, stem: str) -> Path:
        return self.output / RECORDS / f"{stem}.json"

    def load_record(self, stem: str) -> dict[str, Any] | None:
        path = self.record_path(stem)
        return json.loads(path.read_text()) if path.is_file() else None

    def save_record(self, stem: str, record: Mapping[str, Any]) -> Path:
        return atomic_write_json(plain(dict(record)), self.record_path(stem))

    def finished(self, stem: str) -> bool:
        """Recorded, and without an error (a video whose run failed is run again)."""
        record = self.load_record(stem)
        return record is not None and record.get("error") is None

    def write_run(self, checkpoint: str, finished: bool, **content: Any) -> Path:
        """``run.json``: version, command, checkpoint, settings, runtime, then ``content``
        (videos, errors, skipped, …)."""
        return atomic_write_json(plain({"endofm_version": __version__, "command": self.command,
                                        "checkpoint": checkpoint, "settings": self.settings,
                                        "runtime": self.runtime, "finished": finished,
                                        **content}), self.run_file)
