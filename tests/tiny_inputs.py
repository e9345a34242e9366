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
