"""The optional ONNX packages (``pip install 'endofm[onnx]'``), imported on demand so that a
missing one is one clear line, not a traceback."""

from __future__ import annotations

import importlib
from types import ModuleType

INSTALL_HINT = "pip install 'endofm[onnx]'"


class MissingDependencyError(RuntimeError):
    """An optional package a command needs is not installed."""


def require(module: str, needed_for: str) -> ModuleType:
    """Import ``module`` (``onnx``, ``onnxruntime``, ``onnxscript``) or raise
    :class:`MissingDependencyError` naming what needs it and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{needed_for} needs the '{module}' package, which is not installed: "
            f"{INSTALL_HINT} (onnx, onnxruntime, onnxscript)") from exc
