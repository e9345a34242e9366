"""endofm: Endo-FM, a foundation model for endoscopy video analysis.

The model API (``create_model``, ``load_checkpoint``, …) is imported on first use, so that
importing ``endofm`` (and starting the ``endofm`` command) does not load torch.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:  # the installed distribution's version, which setuptools-scm took from the git tag
    __version__ = version("endofm")
except PackageNotFoundError:  # a source tree on the path that was never installed
    __version__ = "0+unknown"

_LAZY = {name: "endofm.models" for name in (
    "create_model", "list_models", "load_checkpoint", "save_pretrained")}
# The classifier lives with its task.
_LAZY["load_classifier"] = "endofm.tasks.classification.model"

# Inference (``endofm.inference``) pulls in decoding and plotting: also imported on first use.
_LAZY |= {name: "endofm.inference" for name in ("VideoEncoder", "load_task_model",
                                                 "predict_video")}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'endofm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
