"""The end of a run: close the metric log, plot its curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from endofm.utils.logging import MetricLogger, plot_curves, read_jsonl


def finish_logs(logger: MetricLogger, output: Path, keys: Sequence[str], plot_name: str,
                title: str) -> list[dict]:
    """Close ``logger``, plot ``keys`` of ``output/metrics.jsonl`` into ``output/plot_name``
    (when there are rows) and return the rows."""
    logger.close()
    path = Path(output) / "metrics.jsonl"
    rows = read_jsonl(path) if path.exists() else []
    if rows:
        plot_curves(rows, keys, Path(output) / plot_name, title=title)
    return rows
