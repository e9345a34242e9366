"""Whole-sequence inference (overlapping windows, averaged) and the evaluation artefacts:
per-sequence metrics, predicted masks as PNGs and one contact sheet per sequence."""

from __future__ import annotations

import math
from collections.abc import Sequence as SequenceABC
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from endofm.data.images import read_image
from endofm.tasks.segmentation.data import SegmentationSequences
from endofm.tasks.segmentation.metrics import sequence_metrics, summarize
from endofm.tasks.segmentation.stitching import stitch, window_indices, window_starts
from endofm.utils.device import autocast
from endofm.utils.progress import progress

SHEET_FRAMES = 16
SHEET_TILE = 160


@torch.no_grad()
def predict_sequence(model: nn.Module, frames: torch.Tensor, num_frames: int | None,
                     stride: int,
                     out_size: tuple[int, int], device: torch.device, precision: str = "fp32",
                     batch_size: int = 4) -> torch.Tensor:
    """Class probabilities of a whole sequence.

    ``frames`` float ``[3, L, S, S]`` (normalised) → probabilities ``[L, C, *out_size]``: the
    softmax of every window of ``num_frames`` frames (starts ``stride`` apart), averaged over
    the windows that contain a frame, then resized bilinearly to ``out_size``.
    ``num_frames=None``: the whole sequence is one window (the release).
    """
    length = frames.shape[1]
    if num_frames is None:
        num_frames = stride = length
    starts = window_starts(length, num_frames, stride)
    preds: list[torch.Tensor] = []
    for i in range(0, len(starts), batch_size):
        clips = torch.stack([frames[:, window_indices(s, num_frames, length)]
                             for s in starts[i:i + batch_size]]).to(device)
        with autocast(device, precision):
            logits = model(clips)  # [B, C, T, S, S]
        preds.extend(logits.float().softmax(dim=1).transpose(1, 2).cpu())
    probs = stitch(preds, starts, length)
    return F.interpolate(probs, size=out_size, mode="bilinear", align_corners=False)


def save_mask_pngs(masks: np.ndarray, frame_paths: SequenceABC[Path], out_dir: Path) -> None:
    """Write each binary mask ``[L, H, W]`` as ``<frame stem>.png`` (0 / 255) in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for mask, frame in zip(masks, frame_paths, strict=True):
        Image.fromarray((mask > 0).astype(np.uint8) * 255).save(out_dir / f"{frame.stem}.png")


def _overlay(frame: np.ndarray, pred: np.ndarray, gt: np.ndarray) -> Image.Image:
    """Frame with the prediction tinted red and the ground-truth outline in green."""
    img = frame.astype(np.float32)
    img[pred > 0] = 0.55 * img[pred > 0] + 0.45 * np.array([255, 0, 0])
    gt = gt > 0
    edge = gt & ~(np.roll(gt, 1, 0) & np.roll(gt, -1, 0) & np.roll(gt, 1, 1) & np.roll(gt, -1, 1))
    img[edge] = (0, 255, 0)
    return Image.fromarray(img.clip(0, 255).astype(np.uint8))


def save_contact_sheet(frame_paths: SequenceABC[Path], pred: np.ndarray, gt: np.ndarray,
                       path: Path) -> Path:
    """A grid of up to ``SHEET_FRAMES`` evenly spaced frames with overlays, as a PNG."""
    idx = np.unique(np.linspace(0, len(frame_paths) - 1, SHEET_FRAMES).round().astype(int))
    tiles = [_overlay(read_image(frame_paths[i]), pred[i], gt[i]) for i in idx]
    w0, h0 = tiles[0].size
    tw, th = SHEET_TILE, max(1, round(SHEET_TILE * h0 / w0))
    cols = min(len(tiles), 4)
    sheet = Image.new("RGB", (cols * tw, math.ceil(len(tiles) / cols) * th))
    for k, tile in enumerate(tiles):
        sheet.paste(tile.resize((tw, th)), ((k % cols) * tw, (k // cols) * th))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def evaluate_sequences(model: nn.Module, sequences: SequenceABC, size: int,
                       num_frames: int | None, stride: int, device: torch.device,
                       precision: str = "fp32", out_dir: Path | None = None,
                       normalise: str = "imagenet") -> dict:
    """Segment every sequence and score it against its masks at the masks' own resolution.

    Returns ``{"dice", "iou", "hd95", "dice_frame", "iou_frame", "hd95_frame" (means over
    sequences), "num_sequences", "num_frames", "per_sequence": {name: metrics}}``. With
    ``out_dir``, also writes ``masks/<sequence>/<frame>.png`` and ``sheets/<sequence>.png``.
    The caller puts the model in eval mode (the engine does).
    """
    per_sequence: dict[str, dict[str, float]] = {}
    total_frames = 0
    pairs = zip(sequences, SegmentationSequences(sequences, size, normalise), strict=True)
    for seq, (name, frames, masks) in progress(pairs, total=len(sequences), desc="evaluate",
                                               unit="sequence"):
        probs = predict_sequence(model, frames, num_frames, stride, tuple(masks.shape[1:]),
                                 device, precision)
        pred = probs.argmax(dim=1).numpy().astype(np.uint8)
        gt = masks.numpy()
        per_sequence[name] = sequence_metrics(pred, gt)
        total_frames += len(gt)
        if out_dir is not None:
            save_mask_pngs(pred, seq.frames, out_dir / "masks" / name)
            save_contact_sheet(seq.frames, pred, gt, out_dir / "sheets" / f"{name}.png")
    result = {**summarize(per_sequence), "num_sequences": len(per_sequence),
              "num_frames": total_frames, "per_sequence": per_sequence}
    return result
