"""Short listings for messages: long key or shape lists are cut and the rest counted."""

from __future__ import annotations

from collections.abc import Sequence

MAX_LISTED = 10


def short_list(items: Sequence[object], limit: int = MAX_LISTED, sep: str = ", ") -> str:
    """``"a, b, c"``; beyond ``limit`` items, ``"a, b, … and 7 more"``."""
    shown = sep.join(str(item) for item in items[:limit])
    if len(items) > limit:
        shown += f"{sep}… and {len(items) - limit} more"
    return shown
