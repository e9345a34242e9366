"""The end of a run: close the metric log, plot its curves."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from endofm.utils.logging import MetricLogger, read_jsonl


def finish_logs(logger: MetricLogger, plot_path: Path,
                plot: Callable[[list[dict], Path], object]) -> list[dict]:
    """Close ``logger``; when its ``metrics.jsonl`` has rows, draw them with
    ``plot(rows, plot_path)``. Returns the rows."""
    logger.close()
    rows = read_jsonl(logger.path) if logger.path.exists() else []
    if rows:
        plot(rows, Path(plot_path))
    return rows
