"""The backbone section of every config: ``model.backbone.{name, pretrained, img_size, ...}``.

Every command (pre-training, the three tasks, the probe) builds its video ViT from one
:class:`BackboneConfig`. Its input size and frame count belong to the data settings as well
(the crop size, the clip length); they are written once: left unset (``None``) they are taken
from the data settings when the config is loaded, and a value given in both places that
disagrees is an error (:meth:`BackboneConfig.bind`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

ATTENTION_TYPES = ("divided_space_time", "space_only", "joint_space_time")
# the release's attention (divided space-time) and its two ablations
AttentionType = StrEnum("AttentionType", [(name, name) for name in ATTENTION_TYPES])


@dataclass
class BackboneConfig:
    """``name``: a registered config (``endofm.list_models()``); ``pretrained``: any checkpoint
    ``endofm.create_model`` reads (``None``: random init); ``embed_dim``/``depth``/``num_heads``
    ``None``: from the checkpoint, else the named config (``attention_type`` too);
    ``img_size``/``num_frames`` ``None``: from the command's data settings."""

    name: str = "endofm_vit_base_patch16"  # registered backbone config (endofm.list_models())
    # checkpoint to start from (a file endofm.create_model reads); null: random init
    pretrained: str | None = None
    img_size: int | None = None  # input side (px); null: the command's crop size
    num_frames: int | None = None  # input frames; null: the command's data.num_frames
    embed_dim: int | None = None  # token width; null: the checkpoint's, else the named config's
    depth: int | None = None  # transformer blocks; null: the checkpoint's, else the named config's
    num_heads: int | None = None  # attention heads; null: the checkpoint's, else the named config's
    # space-time attention layout; null: the checkpoint's, else the named config's
    attention_type: AttentionType | None = None
    drop_path_rate: float = 0.1  # stochastic depth: the largest drop-path rate (last block; 0: off)
    grad_checkpointing: bool = False  # recompute each block in the backward pass

    def bind(self, img_size: int, num_frames: int, source: str) -> None:
        """Fill the unset size and frame count from the data settings (``source`` names
        them, e.g. ``"data.crop_size/data.num_frames"``); a set value that disagrees raises
        ``ValueError``."""
        size_key, frames_key = source.split("/")
        for key, own, given, data_key in (("img_size", self.img_size, img_size, size_key),
                                          ("num_frames", self.num_frames, num_frames,
                                           frames_key)):
            if own is None:
                setattr(self, key, given)
            elif own != given:
                raise ValueError(f"model.backbone.{key}={own} disagrees with {data_key}="
                                 f"{given}; set only {data_key} (model.backbone.{key} follows "
                                 "it)")
