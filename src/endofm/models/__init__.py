"""Endo-FM backbone, its named configs and checkpoint layouts (task models live with their
task under ``endofm.tasks``)."""

from endofm.models.checkpoint import (
    CheckpointError,
    LoadedCheckpoint,
    load_checkpoint,
    safe_load,
)
from endofm.models.config import BackboneConfig
from endofm.models.registry import (
    backbone_config,
    create_backbone,
    create_model,
    list_models,
    model_config,
    save_pretrained,
)
from endofm.models.vision_transformer import Attention, Block, VisionTransformer

__all__ = [
    "Attention", "BackboneConfig", "Block", "CheckpointError", "LoadedCheckpoint",
    "VisionTransformer", "backbone_config", "create_backbone", "create_model",
    "list_models", "load_checkpoint", "model_config", "safe_load", "save_pretrained",
]
