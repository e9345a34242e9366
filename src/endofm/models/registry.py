"""Named model configs and ``create_model`` in the style of timm."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from endofm.models.card import model_card
from endofm.models.checkpoint import (
    BACKBONE_KIND,
    CheckpointError,
    adapt_state_dict,
    load_checkpoint,
    save_state_dir,
)
from endofm.models.config import BackboneConfig
from endofm.models.vision_transformer import VisionTransformer

_BASE = dict(img_size=224, patch_size=16, num_frames=8, mlp_ratio=4.0, qkv_bias=True,
             drop_path_rate=0.1, attention_type="divided_space_time")

MODEL_CONFIGS: dict[str, dict[str, Any]] = {
    # The released Endo-FM backbone (ViT-B/16, 224 px, 8 frames).
    "endofm_vit_base_patch16": {**_BASE, "embed_dim": 768, "depth": 12, "num_heads": 12},
    "endofm_vit_small_patch16": {**_BASE, "embed_dim": 384, "depth": 12, "num_heads": 6},
    "endofm_vit_tiny_patch16": {**_BASE, "embed_dim": 192, "depth": 12, "num_heads": 3},
}

# Head count by width, for files that do not store it (released checkpoints).
NAMED_HEADS = {cfg["embed_dim"]: cfg["num_heads"] for cfg in MODEL_CONFIGS.values()}

OVERRIDABLE = ("img_size", "patch_size", "in_chans", "num_frames", "depth", "embed_dim",
               "num_heads", "mlp_ratio", "qkv_bias", "drop_rate", "attn_drop_rate",
               "drop_path_rate", "attention_type", "grad_checkpointing", "use_mask_token")
# Settings a checkpoint determines (the rest are training-time choices).
ARCH_KEYS = ("img_size", "patch_size", "in_chans", "num_frames", "depth", "embed_dim",
             "num_heads", "attention_type")


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`."""
    return sorted(MODEL_CONFIGS)


def model_config(name: str, **overrides: Any) -> dict[str, Any]:
    """The named config with ``overrides`` applied; unknown names or settings are errors."""
    if name not in MODEL_CONFIGS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    unknown = sorted(set(overrides) - set(OVERRIDABLE))
    if unknown:
        raise ValueError(f"unknown setting(s) for {name}: {unknown}; "
                         f"allowed: {', '.join(OVERRIDABLE)}")
    return {**MODEL_CONFIGS[name], **overrides}


def create_model(name: str = "endofm_vit_base_patch16", pretrained: str | Path | None = None,
                 *, random_init: bool = True, **overrides: Any) -> VisionTransformer:
    """Build a named backbone, optionally with weights from ``pretrained``.

    ``pretrained`` is any layout :func:`endofm.models.checkpoint.load_checkpoint` reads (a
    released ``.pth``, SVT/TimeSformer checkpoints, a state dict, or an endofm directory).
    Architecture settings not given in ``overrides`` are taken from the checkpoint; a
    checkpoint made for another image size or frame count is adapted by resizing its
    positional tables (with a warning). Head counts are not stored in released files: they are
    taken from the named config of the file's width (:func:`resolve_num_heads`); for any other
    width ``num_heads`` must be passed. Returns the model in train mode on the CPU.

    ``random_init``: a model loaded from ``pretrained`` is first randomly initialised (as the
    release builds its model before loading weights), so what a seeded run draws next, e.g. a
    task head's init, does not depend on whether weights were loaded; ``False`` skips that draw
    (:func:`model_from_state`: a faster start, for inference).

    Args:
        name: a registered config (:func:`list_models`).
        pretrained: weights to load: a file or folder of any supported layout, or an
            ``hf-hub:OWNER/NAME`` name; ``None``: a random initialisation.
        random_init: initialise randomly before loading ``pretrained`` (see above).
        **overrides: architecture settings (``img_size``, ``num_frames``, ``depth``,
            ``embed_dim``, ``num_heads``, ``drop_path_rate``, ``attention_type``,
            ``grad_checkpointing``); any other name is an error.

    Returns:
        The backbone: ``model(clips)`` maps ``[B, 3, T, H, W]`` clips to normalised CLS
        embeddings ``[B, D]``; ``forward_features`` gives the tokens ``[B, 1 + N*T, D]``.
    """
    cfg = model_config(name, **overrides)
    if pretrained is None:
        return VisionTransformer(**cfg)
    ckpt = load_checkpoint(pretrained)
    named_width = cfg["embed_dim"]
    for key in ARCH_KEYS:
        if key not in overrides and key in ckpt.config:
            cfg[key] = ckpt.config[key]
    if "num_heads" not in overrides and "num_heads" not in ckpt.config:
        if cfg["embed_dim"] != named_width:
            cfg["num_heads"] = resolve_num_heads(ckpt.config, source=ckpt.path)
    return model_from_state(cfg, ckpt.state_dict, ckpt.path, random_init=random_init)


def model_from_state(cfg: dict[str, Any], state_dict: dict[str, Tensor],
                     source: str | Path = "", *, random_init: bool) -> VisionTransformer:
    """``VisionTransformer(**cfg)`` holding ``state_dict`` (adapted by
    :func:`~endofm.models.checkpoint.adapt_state_dict`; a strict load).

    Without ``random_init`` the model is built without the random initialisation the weights
    would overwrite: its modules are made on the meta device and their memory allocated
    uninitialised, so every tensor is the checkpoint's or, for a ``mask_token`` the checkpoint
    lacks, its initial zeros. A ViT-B/16 starts about 1.5 s sooner on 2 cores and the global
    random stream is left untouched."""
    if random_init:
        model = VisionTransformer(**cfg)
    else:
        with torch.device("meta"):
            model = VisionTransformer(**cfg)
        model.to_empty(device="cpu")
        if model.mask_token is not None:
            nn.init.zeros_(model.mask_token)
    model.load_state_dict(adapt_state_dict(state_dict, model, source))
    return model


def resolve_num_heads(config: dict[str, Any], requested: int | None = None,
                      source: str | Path = "") -> int:
    """The head count of a checkpoint's backbone: ``requested``, else the one the file records,
    else the named config's for that width (768→12, 384→6, 192→3). Never a guess: for any
    other width a :class:`CheckpointError` asks for ``num_heads``."""
    if requested:
        return int(requested)
    if config.get("num_heads"):
        return int(config["num_heads"])
    width = config["embed_dim"]
    if width in NAMED_HEADS:
        return NAMED_HEADS[width]
    named = ", ".join(f"{w} ({h} heads)" for w, h in sorted(NAMED_HEADS.items()))
    raise CheckpointError(
        f"{source}: num_heads required: the file does not store the head count and its width "
        f"{width} is not a named config's ({named}); pass it (--num-heads N, "
        "model.num_heads=N, or num_heads=N)")


def create_backbone(cfg: BackboneConfig, **changes: Any) -> VisionTransformer:
    """The backbone of a ``model.backbone`` section; ``changes`` replace its fields (e.g.
    ``pretrained=path``, ``drop_path_rate=0.0``) or go to :func:`create_model` (e.g.
    ``use_mask_token=True``). Architecture settings left unset come from the checkpoint or the
    named config."""
    fields = {f.name for f in dataclasses.fields(BackboneConfig)}
    extra = {k: v for k, v in changes.items() if k not in fields}
    cfg = dataclasses.replace(cfg, **{k: v for k, v in changes.items() if k in fields})
    if cfg.img_size is None or cfg.num_frames is None:
        raise ValueError("model.backbone.img_size / num_frames are unset: load the config with "
                         "endofm.config.load_config, which takes them from the data settings")
    arch = {key: value for key in ("embed_dim", "depth", "num_heads", "attention_type")
            if (value := getattr(cfg, key))}
    return create_model(cfg.name, pretrained=cfg.pretrained or None, img_size=cfg.img_size,
                        num_frames=cfg.num_frames, drop_path_rate=cfg.drop_path_rate,
                        grad_checkpointing=cfg.grad_checkpointing, **arch, **extra)


def backbone_config(model: VisionTransformer) -> dict[str, Any]:
    """The architecture settings of ``model`` (what ``config.json`` records)."""
    return {key: getattr(model, key) for key in ("img_size", "patch_size", "num_frames",
                                                 "depth", "embed_dim", "num_heads",
                                                 "attention_type")} | {
        "in_chans": model.patch_embed.proj.in_channels,
        "mlp_ratio": model.blocks[0].mlp.fc1.out_features / model.embed_dim,
        "qkv_bias": model.blocks[0].attn.qkv.bias is not None,
    }


def save_pretrained(model: nn.Module, out_dir: str | Path, *, license: str = "other",
                    datasets: Sequence[str] = ()) -> Path:
    """Write a backbone as an endofm folder, ready to load or to upload to the hub.

    A pre-training mask token is left out. The folder loads with
    ``create_model(name, pretrained=out_dir)`` (or ``pretrained="hf-hub:OWNER/NAME"`` once
    uploaded).

    Args:
        model: the backbone.
        out_dir: the folder to write (created if needed; files are replaced atomically).
        license: the weights' licence as a hub licence id, for the model card (``"other"``:
            unknown).
        datasets: the training data's hub dataset ids or names, for the model card.

    Returns:
        ``out_dir``, holding ``model.safetensors`` (the tensors), ``config.json`` (the
        architecture: ``{"kind": "backbone", "backbone": {img_size, patch_size, num_frames,
        depth, embed_dim, num_heads, attention_type, …}}``) and ``README.md`` (the model card,
        its YAML header in the hub's format).
    """
    if not isinstance(model, VisionTransformer):
        raise CheckpointError(f"save_pretrained expects a VisionTransformer, got "
                              f"{type(model).__name__}")
    meta = {"kind": BACKBONE_KIND, "format": "endofm", "backbone": backbone_config(model)}
    tensors = {k: v for k, v in model.state_dict().items() if k != "mask_token"}
    return save_state_dir(tensors, meta, out_dir, model_card(meta, license, datasets))
