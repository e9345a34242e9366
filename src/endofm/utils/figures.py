"""Writing matplotlib figures: one place for the PNG, atomically, and the figure closed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from endofm.utils.io import atomic_write


def save_figure(fig: Any, path: str | Path, dpi: int = 100, **savefig: Any) -> Path:
    """Write ``fig`` as a PNG at ``path`` (folders made, temporary file + rename) and close it;
    ``savefig`` goes to ``Figure.savefig`` (e.g. ``bbox_inches="tight"``)."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, **savefig))
    plt.close(fig)
    return path
