"""What the inference, deploy, runner and eval tests share: the tiny backbone's size and the
synthetic frames their videos are written from."""

from __future__ import annotations

import numpy as np

TINY = dict(img_size=32, num_frames=4, embed_dim=96, depth=2, num_heads=4, drop_path_rate=0.0)


def moving_frames(n: int, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """uint8 ``[n, H, W, 3]``: a bright square moving over a noisy background, so every frame
    differs and decoded frames can be told apart."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 60, (n, height, width, 3), dtype=np.uint8)
    for i in range(n):
        x = (3 * i) % (width - 12)
        frames[i, 10:22, x:x + 12] = (230, 120 + (i * 7) % 100, 40)
    return frames


def tiny_phase_model(root, phases=("idle", "cut", "close"), rate: float = 10.0):
    """An untrained causal phase model's folder under ``root`` (``Path``): the temporal model
    and the one-block tiny backbone its features come from, ``rate`` windows per second."""
    from endofm.config import load_config, recipe_path
    from endofm.models import create_backbone, save_pretrained
    from endofm.tasks.phase.config import PhaseConfig
    from endofm.tasks.phase.task import BACKBONE_DIR, build_tcn, save_phase_model

    cfg = load_config(PhaseConfig, recipe_path("phase", "tiny"),
                      [f"features.rate={rate}", "model.causal=true", "features.backbone.depth=1"])
    backbone = create_backbone(cfg.features.backbone)
    save_pretrained(backbone, root / BACKBONE_DIR)
    model = build_tcn(cfg.model, backbone.embed_dim, len(phases), 0)
    return save_phase_model(model, cfg, phases, [], "segments", root)
