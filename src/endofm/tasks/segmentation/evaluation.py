"""Whole-sequence inference (overlapping windows, averaged) and the evaluation artefacts:
per-sequence and per-class metrics, predicted masks as PNGs and one contact sheet per
sequence (class colours with a legend)."""

from __future__ import annotations

import math
from collections.abc import Sequence as SequenceABC
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torch import nn

from endofm.data.formats import ClassSet
from endofm.data.formats.masks import IGNORE
from endofm.data.images import read_image
from endofm.tasks.segmentation.data import (
    MaskDecoder,
    Normalization,
    SegmentationSequences,
    read_mask,
)
from endofm.tasks.segmentation.metrics import (
    confusion,
    per_class_scores,
    sequence_metrics,
    summarize,
)
from endofm.tasks.segmentation.stitching import stitch, window_indices, window_starts
from endofm.utils.device import autocast
from endofm.utils.progress import progress

SHEET_FRAMES = 16
SHEET_TILE = 160
CVC_CLASSES = ClassSet(("background", "polyp"), (0, 255), (0, 255))


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


def save_mask_pngs(masks: np.ndarray, frame_paths: SequenceABC[Path], out_dir: Path,
                   binary: bool = True) -> None:
    """Write each mask ``[L, H, W]`` as ``<frame stem>.png`` in ``out_dir``: binary masks as
    0 / 255, others as class indices (``classes`` in ``metrics.json`` names them)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for mask, frame in zip(masks, frame_paths, strict=True):
        image = (mask > 0).astype(np.uint8) * 255 if binary else mask.astype(np.uint8)
        Image.fromarray(image).save(out_dir / f"{frame.stem}.png")


def class_colours(classes: ClassSet, background: int | None) -> list[tuple[int, int, int] | None]:
    """An overlay colour per class: a colour mask's own colours, else a qualitative palette
    (red first, as the binary overlay); ``None`` (not tinted) for the background."""
    from matplotlib import colormaps

    palette = colormaps["tab10" if len(classes) <= 11 else "tab20"]
    own = classes.values if classes.values and isinstance(classes.values[0], tuple) else None
    colours: list[tuple[int, int, int] | None] = []
    k = 0
    for c in range(len(classes)):
        if c == background:
            colours.append(None)
            continue
        if own is not None:
            colours.append(tuple(own[c]))
            continue
        rgb = (255, 0, 0) if k == 0 else tuple(int(v * 255) for v in palette(k % palette.N)[:3])
        colours.append(rgb)
        k += 1
    return colours


def _overlay(frame: np.ndarray, pred: np.ndarray, gt: np.ndarray,
             colours: SequenceABC[tuple[int, int, int] | None]) -> Image.Image:
    """Frame with each predicted class tinted in its colour and the ground truth's class
    boundaries in green."""
    img = frame.astype(np.float32)
    for c, colour in enumerate(colours):
        if colour is not None:
            img[pred == c] = 0.55 * img[pred == c] + 0.45 * np.array(colour)
    edge = np.zeros(gt.shape, bool)
    edge[:-1] |= gt[:-1] != gt[1:]
    edge[:, :-1] |= gt[:, :-1] != gt[:, 1:]
    img[edge] = (0, 255, 0)
    return Image.fromarray(img.clip(0, 255).astype(np.uint8))


def legend_strip(names: SequenceABC[str], colours: SequenceABC[tuple[int, int, int] | None],
                 width: int) -> Image.Image:
    """A band naming each tinted class beside a swatch of its colour (wrapping lines)."""
    entries = [(n, c) for n, c in zip(names, colours, strict=True) if c is not None]
    font = ImageFont.load_default()
    row_h, x, y, placed = 16, 4, 4, []
    for name, colour in entries:
        w = 14 + int(font.getlength(name)) + 12
        if x + w > width and x > 4:
            x, y = 4, y + row_h
        placed.append((x, y, name, colour))
        x += w
    strip = Image.new("RGB", (width, y + row_h + 4), (0, 0, 0))
    draw = ImageDraw.Draw(strip)
    for x, y, name, colour in placed:
        draw.rectangle([x, y + 2, x + 10, y + 12], fill=colour)
        draw.text((x + 14, y + 1), name, fill=(255, 255, 255), font=font)
    return strip


def save_contact_sheet(frame_paths: SequenceABC[Path], pred: np.ndarray, gt: np.ndarray,
                       path: Path, classes: ClassSet = CVC_CLASSES,
                       background: int | None = 0) -> Path:
    """A grid of up to ``SHEET_FRAMES`` evenly spaced frames with overlays and a legend of the
    class colours, as a PNG."""
    colours = class_colours(classes, background)
    idx = np.unique(np.linspace(0, len(frame_paths) - 1, SHEET_FRAMES).round().astype(int))
    tiles = [_overlay(read_image(frame_paths[i]), pred[i], gt[i], colours) for i in idx]
    w0, h0 = tiles[0].size
    tw, th = SHEET_TILE, max(1, round(SHEET_TILE * h0 / w0))
    cols = min(len(tiles), 4)
    legend = legend_strip(classes.names, colours, max(cols * tw, 160))
    rows = math.ceil(len(tiles) / cols)
    sheet = Image.new("RGB", (legend.width, rows * th + legend.height))
    for k, tile in enumerate(tiles):
        sheet.paste(tile.resize((tw, th)), ((k % cols) * tw, (k // cols) * th))
    sheet.paste(legend, (0, rows * th))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def evaluate_sequences(model: nn.Module, sequences: SequenceABC, size: int,
                       num_frames: int | None, stride: int, device: torch.device,
                       precision: str = "fp32", out_dir: Path | None = None,
                       normalization: Normalization = Normalization.imagenet,
                       decode: MaskDecoder = read_mask,
                       classes: ClassSet = CVC_CLASSES, background: int | None = 0) -> dict:
    """Segment every sequence and score it against its masks at the masks' own resolution.

    Two classes with background 0 (CVC, binary masks) return the release's keys: ``{"dice",
    "iou", "hd95", "dice_frame", "iou_frame", "hd95_frame" (means over sequences),
    …}``; more classes return ``dice`` and ``iou`` as the means over the foreground classes of
    each class's score over all pixels of the split (:func:`per_class_scores`), and
    ``per_sequence`` the foreground mean of each sequence. Both have ``per_class``
    (``{name: {"dice", "iou", "pixels"}}``), ``class_names``, ``num_sequences``,
    ``num_frames``. Ignored pixels (``data.ignore_index``) count nowhere. With ``out_dir``,
    also writes ``masks/<sequence>/<frame>.png`` and ``sheets/<sequence>.png``. The caller
    puts the model in eval mode (the engine does).
    """
    names = list(classes.names)
    binary = len(names) == 2 and background == 0
    per_sequence: dict[str, dict[str, float]] = {}
    counts = np.zeros((len(names), len(names)), np.int64)
    total_frames = 0
    pairs = zip(sequences, SegmentationSequences(sequences, size, normalization, decode),
                strict=True)
    for seq, (name, frames, masks) in progress(pairs, total=len(sequences), desc="evaluate",
                                               unit="sequence"):
        probs = predict_sequence(model, frames, num_frames, stride, tuple(masks.shape[1:]),
                                 device, precision)
        pred = probs.argmax(dim=1).numpy().astype(np.uint8)
        gt = masks.numpy()
        seq_counts = confusion(pred, gt, len(names))
        counts += seq_counts
        if binary:
            kept = gt != IGNORE
            per_sequence[name] = sequence_metrics(pred * kept, gt * kept)
        else:
            scores = per_class_scores(seq_counts, names, background)
            per_sequence[name] = {"dice": scores["dice_mean"], "iou": scores["iou_mean"]}
        total_frames += len(gt)
        if out_dir is not None:
            save_mask_pngs(pred, seq.frames, out_dir / "masks" / name, binary)
            save_contact_sheet(seq.frames, pred, gt, out_dir / "sheets" / f"{name}.png",
                               classes, background)
    scores = per_class_scores(counts, names, background)
    if binary:
        result = summarize(per_sequence)
    else:
        result = {"dice": scores["dice_mean"], "iou": scores["iou_mean"]}
        if result["dice"] is None:
            raise ValueError("no foreground class in the ground truth or the predictions of "
                             f"{len(per_sequence)} sequences: Dice is undefined")
    return {**result, "per_class": scores["per_class"], "class_names": names,
            "num_sequences": len(per_sequence), "num_frames": total_frames,
            "per_sequence": per_sequence}
