"""Contact sheets of the pre-training views, so a user can see what the augmentations do.

One PNG per clip: one row per view (2 global, then 8 local), its frames left to right,
un-normalised, drawn at a common scale so local views look as small as they are.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw

from endofm.data.manifest import resolve_items
from endofm.data.pretrain_dataset import PretrainClipDataset
from endofm.data.transforms import denormalize
from endofm.data.views import PretrainViews, PretrainViewsConfig
from endofm.utils.io import atomic_write

LABEL_WIDTH = 150
GAP = 4


def contact_sheet(views: list[torch.Tensor], cfg: PretrainViewsConfig,
                  global_cell: int = 96) -> Image.Image:
    """A sheet of normalised views ``[3, T_v, S_v, S_v]``; a global frame is ``global_cell`` px."""
    scale = global_cell / cfg.global_size
    rows = [denormalize(v, cfg.mean, cfg.std).numpy() for v in views]
    cells = [max(1, round(r.shape[1] * scale)) for r in rows]
    width = LABEL_WIDTH + max(len(r) * (c + GAP) for r, c in zip(rows, cells, strict=True))
    height = sum(c + GAP for c in cells) + GAP
    sheet = Image.new("RGB", (width, height), (32, 32, 32))
    draw = ImageDraw.Draw(sheet)
    y = GAP
    for k, (frames, cell) in enumerate(zip(rows, cells, strict=True)):
        kind = f"global {k + 1}" if k < 2 else f"local {k - 1}"
        draw.text((4, y), f"{kind}: {len(frames)} f, {frames.shape[1]}px", fill=(230, 230, 230))
        for t, frame in enumerate(frames):
            tile = Image.fromarray(frame).resize((cell, cell), Image.Resampling.BILINEAR)
            sheet.paste(tile, (LABEL_WIDTH + t * (cell + GAP), y))
        y += cell + GAP
    return sheet


def preview_views(source: str | Path, out_dir: str | Path, num_clips: int = 2, seed: int = 0,
                  cfg: PretrainViewsConfig | None = None,
                  folder_fps: float = 30.0) -> list[Path]:
    """Write a contact sheet of the views of ``num_clips`` random clips of ``source`` (a video,
    frame folder, folder of videos or manifest) into ``out_dir``; returns the PNG paths."""
    if num_clips <= 0:
        raise ValueError(f"num_clips must be positive, got {num_clips}")
    views = PretrainViews(cfg)
    torch.manual_seed(seed)
    dataset = PretrainClipDataset(resolve_items(source), views, on_error="raise",
                                  folder_fps=folder_fps, probe=False)
    chosen = torch.randperm(len(dataset))[:num_clips].tolist()
    out_paths = []
    for n, index in enumerate(chosen):
        sheet = contact_sheet(dataset.load(index), views.cfg)
        name = f"views_{n:02d}_{Path(dataset.items[index].path).stem}.png"
        out_paths.append(atomic_write(Path(out_dir) / name,
                                      lambda tmp, s=sheet: s.save(tmp, format="PNG")))
    return out_paths
