"""The one guard of every output folder an inference command writes (``extract``, ``predict``,
``attention``).

``DIR/run.json`` records the command, the settings that change the outputs (compared on a
re-run), the runtime settings (recorded only: device, batch size, workers, compile) and, once
the run is through, its videos and errors. ``DIR/.records/<video>.json`` is written when a
video is through: a re-run into the same folder with the same settings skips the videos
recorded without an error and runs again those whose record holds one; a re-run with other
settings, or by another command, is refused in one line naming what differs. ``weights``
records the path, size and SHA-256 of every weights file the run read: a re-run whose
weights changed since (same path, other bytes) is refused in one line naming the checkpoint.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from endofm import __version__
from endofm.models.hub import comparable_fingerprint, weights_fingerprint
from endofm.utils.io import atomic_write_json

RECORDS = ".records"
RUN_FILE = "run.json"

log = logging.getLogger(__name__)


def plain(value: Any) -> Any:
    """``value`` as JSON would read it back (tuples → lists, paths → strings)."""
    return json.loads(json.dumps(value, default=str))


def weights_record(weights: Sequence[str | Path]) -> list[dict[str, Any]]:
    """``{"path", "size", "sha256"}`` (and ``"name"`` for an ``hf-hub:`` name) of each of
    ``weights`` (a model folder: its ``model.safetensors``), as training run records keep it."""
    return [weights_fingerprint(w) for w in weights]


def changed_weights(old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]
                    ) -> str | None:
    """The first of ``new`` whose bytes differ from ``old``'s record, in words; None if none
    (a record an older endofm wrote is compared by what it holds: its first MiB's SHA-256)."""
    if len(old) != len(new):
        return f"{len(old)} weights file(s) -> {len(new)}"
    for recorded, now in zip(old, new, strict=True):
        before = comparable_fingerprint(recorded, now)
        if before.get("sha256") != now["sha256"]:
            return (f"{now.get('name', now['path'])}: sha256 {str(before.get('sha256'))[:12]}… "
                    f"-> {now['sha256'][:12]}…")
    return None


class RunFolder:
    """``output`` written by ``command`` (``"extract"``, ``"predict detection"``, …) with
    ``settings`` (what changes the outputs), ``runtime`` (what does not) and ``weights`` (the
    weights files or model folders the run reads, fingerprinted now)."""

    def __init__(self, output: str | Path, command: str, settings: Mapping[str, Any],
                 runtime: Mapping[str, Any] | None = None,
                 weights: Sequence[str | Path] = ()) -> None:
        self.output, self.command = Path(output), command
        self.settings, self.runtime = plain(dict(settings)), plain(dict(runtime or {}))
        self.weights = weights_record(weights)

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
        self.check_weights(before)

    def check_weights(self, before: Mapping[str, Any]) -> None:
        """Refuse a folder made with weights whose bytes have changed since."""
        if "weights" not in before:
            log.warning("%s: its %s records no weights' SHA-256 (an older endofm wrote it); "
                        "the weights are not compared", self.output, RUN_FILE)
            return
        changed = changed_weights(before["weights"], self.weights)
        if changed:
            raise ValueError(f"{self.output} holds outputs made with other weights ({changed}); "
                             "use another --output or the weights it was made with")

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
        """``run.json``: version, command, checkpoint, weights, settings, runtime, then
        ``content`` (videos, errors, skipped, …)."""
        return atomic_write_json(plain({"endofm_version": __version__, "command": self.command,
                                        "checkpoint": checkpoint, "weights": self.weights,
                                        "settings": self.settings,
                                        "runtime": self.runtime, "finished": finished,
                                        **content}), self.run_file)
