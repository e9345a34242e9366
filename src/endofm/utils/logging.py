"""Run logging: JSONL metrics and TensorBoard events (main process only), and loss-curve plots."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from endofm.utils.distributed import is_main_process


class MetricLogger:
    """Append one JSON object per ``log`` call to ``metrics.jsonl``; mirror scalars to TensorBoard.

    On non-main processes every call is a no-op, so callers need not check the rank.
    """

    def __init__(self, out_dir: str | Path, tensorboard: bool = True) -> None:
        self.enabled = is_main_process()
        self.path = Path(out_dir) / "metrics.jsonl"
        self._tb = None
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(Path(out_dir) / "tensorboard"))

    def log(self, record: Mapping[str, object], step: int) -> None:
        """Write ``record`` (plus ``step``); numbers also go to TensorBoard under their key."""
        if not self.enabled:
            return
        row = {"step": step, **record}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        if self._tb is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._tb.add_scalar(key, value, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.flush()
            self._tb.close()
            self._tb = None


def read_jsonl(path: str | Path) -> list[dict]:
    """Read a JSONL metrics file back as a list of dicts."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_curves(
    rows: Sequence[Mapping[str, object]], keys: Sequence[str], out_path: str | Path,
    x_key: str = "step", title: str = "",
) -> Path:
    """Plot the numeric series ``keys`` of ``rows`` against ``x_key`` into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for key in keys:
        pts = [(r[x_key], r[key]) for r in rows if key in r and x_key in r]
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, label=key)
    ax.set_xlabel(x_key)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path
