"""Run logging: JSONL metrics and TensorBoard events (main process only), and loss-curve plots."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

from endofm.utils.distributed import is_main_process
from endofm.utils.figures import save_figure
from endofm.utils.io import atomic_write_text


class MetricLogger:
    """Append one JSON object per ``log`` call to ``metrics.jsonl``; mirror scalars to TensorBoard.

    On non-main processes every call is a no-op, so callers need not check the rank. A resumed
    run calls :meth:`rewind` with its next step first, so the rows (and TensorBoard events)
    written between the checkpoint and the crash are not kept twice.
    """

    def __init__(self, out_dir: str | Path, tensorboard: bool = True) -> None:
        self.enabled = is_main_process()
        self.path = Path(out_dir) / "metrics.jsonl"
        self.tb_dir = Path(out_dir) / "tensorboard"
        self.tensorboard = tensorboard
        self._tb = None
        self._purge_step: int | None = None
        if self.enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def rewind(self, next_step: int) -> None:
        """Forget everything logged at ``next_step`` or later: drop those rows of
        ``metrics.jsonl`` (and a torn last line, with a warning) and purge those TensorBoard
        events when the writer opens."""
        if not self.enabled:
            return
        self._purge_step = next_step
        if not self.path.is_file():
            return
        rows = read_jsonl(self.path)
        kept = [row for row in rows if row.get("step", 0) < next_step]
        text = "".join(json.dumps(row) + "\n" for row in kept)
        if len(kept) != len(rows) or self.path.read_text(encoding="utf-8") != text:
            atomic_write_text(text, self.path)

    def log(self, record: Mapping[str, object], step: int) -> None:
        """Write ``record`` (plus ``step``); numbers also go to TensorBoard under their key."""
        if not self.enabled:
            return
        row = {"step": step, **record}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        writer = self._writer()
        if writer is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    writer.add_scalar(key, value, step)

    def _writer(self):  # -> SummaryWriter | None
        if self._tb is None and self.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            wait_for_a_later_event_file(self.tb_dir)
            self._tb = SummaryWriter(log_dir=str(self.tb_dir), purge_step=self._purge_step)
        return self._tb

    def close(self) -> None:
        if self._tb is not None:
            self._tb.flush()
            self._tb.close()
            self._tb = None


def wait_for_a_later_event_file(tb_dir: Path) -> None:
    """Sleep until a new TensorBoard event file will sort after those in ``tb_dir``.

    TensorBoard reads a folder's event files in name order, and a name starts with the second
    it was created in, then the host and the process id. A run resumed within the same second
    as the crashed run's file (a quick restart) could sort before it when its process id is
    smaller; the crashed run's steps would then be read last and undo the resumed run's purge.
    """
    stamps = [int(part) for f in tb_dir.glob("events.out.tfevents.*")
              if (part := f.name.split(".")[3]).isdigit()]
    if stamps:
        time.sleep(max(0.0, max(stamps) + 1 - time.time()))


def read_jsonl(path: str | Path) -> list[dict]:
    """Read a JSONL metrics file back as a list of dicts.

    A torn last line (a crash in the middle of a write) is dropped with a warning naming the
    file; any other unreadable line is a ``ValueError`` naming the file and line.
    """
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    rows = []
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
    for number, line in numbered:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if number == numbered[-1][0]:
                warnings.warn(f"{path}: dropped a torn last line (line {number}: "
                              f"{line[:60]!r}), left by an interrupted run", stacklevel=2)
                break
            raise ValueError(f"{path}, line {number}: not a JSON object ({exc.msg})") from exc
    return rows


def plot_curves(
    rows: Sequence[Mapping[str, object]], keys: Sequence[str], out_path: str | Path,
    x_key: str = "step", title: str = "",
) -> Path:
    """Plot the numeric series ``keys`` of ``rows`` against ``x_key`` into a PNG (a figure
    that says so when none of them was logged)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    plotted = False
    for key in keys:
        pts = [(r[x_key], r[key]) for r in rows if key in r and x_key in r]
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, label=key, marker="o" if len(pts) < 20 else None)
            plotted = True
    ax.set_xlabel(x_key)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if plotted:
        ax.legend()
    else:
        ax.text(0.5, 0.5, f"no {', '.join(keys)} logged", ha="center", va="center",
                transform=ax.transAxes)
    fig.tight_layout()
    return save_figure(fig, out_path, dpi=110)
