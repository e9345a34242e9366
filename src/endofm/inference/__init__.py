"""Running Endo-FM on your own videos: sliding-window features (``VideoEncoder``,
``endofm extract``), whole-video predictions of fine-tuned models, attention maps and reports.

Names are imported on first use: ``endofm extract`` needs the backbone and the decoder, not
the task heads, metrics and scikit-learn that predictions pull in (about 1.7 s at start-up).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "FEATURES": "endofm.inference.backbone",
    "FeatureExtractor": "endofm.inference.backbone",
    "load_backbone": "endofm.inference.backbone",
    "VideoEncoder": "endofm.inference.encoder",
    "ClassificationPrediction": "endofm.inference.predict",
    "DetectionPrediction": "endofm.inference.predict",
    "SegmentationPrediction": "endofm.inference.predict",
    "predict_video": "endofm.inference.predict",
    "TaskModel": "endofm.inference.task_models",
    "load_task_model": "endofm.inference.task_models",
    "Window": "endofm.runner.windows",
    "WindowPlan": "endofm.runner.windows",
    "WindowSpec": "endofm.runner.windows",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'endofm.inference' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
