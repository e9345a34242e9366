"""endofm: Endo-FM, a foundation model for endoscopy video analysis."""

__version__ = "0.1.0"

from endofm.models import (  # noqa: E402
    create_model,
    list_models,
    load_checkpoint,
    load_classifier,
    save_pretrained,
)

# Inference (``endofm.inference``) is imported on first use: it pulls in decoding and plotting.
_INFERENCE = ("VideoEncoder", "load_task_model", "predict_video")

__all__ = ["__version__", "create_model", "list_models", "load_checkpoint", "load_classifier",
           "save_pretrained", *_INFERENCE]


def __getattr__(name: str):
    if name in _INFERENCE:
        import endofm.inference

        return getattr(endofm.inference, name)
    raise AttributeError(f"module 'endofm' has no attribute {name!r}")
