"""PyAV as endofm uses it: imported here once, with FFmpeg's log kept away from the GIL.

Before PyAV 18, PyAV's bridge from FFmpeg's log to Python takes the GIL inside FFmpeg's own
threads. endofm decodes with frame threads (``thread_type = "AUTO"``), and freeing such a decoder
joins those threads while holding the GIL: if one of them is logging at that moment, the
process deadlocks (measured with PyAV 12.0 and 13.0 under PyTorch 2.9; PyAV issues 751 and
909 describe the same lock-up). For those versions endofm hands the log back to FFmpeg, which
prints its errors (PyAV 12: its warnings too) to stderr
without Python. PyAV 18 and later are left as they are.
"""

from __future__ import annotations

import logging
import re

import av
import av.logging

logger = logging.getLogger(__name__)

#: the first PyAV release whose log bridge does not deadlock frame-threaded decoding
SAFE_LOG_BRIDGE = (18, 0)


def major_minor(version: str) -> tuple[int, int]:
    """``"13.1.0"`` → ``(13, 1)``; a suffix after the digits (``"18.0rc1"``) is ignored."""
    major, minor = (version.split(".") + ["0"])[:2]
    return int(major), int(re.match(r"\d*", minor).group() or 0)


def needs_native_log(version: str) -> bool:
    """Whether this PyAV version's log bridge can deadlock a frame-threaded decoder."""
    return major_minor(version) < SAFE_LOG_BRIDGE


if needs_native_log(av.__version__):
    av.logging.restore_default_callback()
    if hasattr(av.logging, "set_libav_level"):  # PyAV 13 and later; 12 prints warnings too
        av.logging.set_libav_level(av.logging.ERROR)
    logger.debug("PyAV %s: FFmpeg's log goes to stderr (errors only), not through Python",
                 av.__version__)

__all__ = ["av", "needs_native_log"]
