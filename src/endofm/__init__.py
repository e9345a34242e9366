"""endofm: Endo-FM, a foundation model for endoscopy video analysis."""

__version__ = "0.1.0"

from endofm.models import (  # noqa: E402
    create_model,
    list_models,
    load_checkpoint,
    load_classifier,
    save_pretrained,
)

__all__ = ["__version__", "create_model", "list_models", "load_checkpoint", "load_classifier",
           "save_pretrained"]
