"""Run a detector over KUMC clips; write metrics.json, COCO predictions and contact sheets."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from torch import nn
from torch.utils.data import DataLoader

from endofm.data.formats import ClassSet
from endofm.data.images import read_image
from endofm.tasks.detection.data import KumcClips, collate
from endofm.tasks.detection.metrics import (
    FrameDetections,
    choose_threshold,
    coco_ground_truth,
    coco_predictions,
    detection_metrics,
    threshold_metrics,
)
from endofm.utils.device import autocast
from endofm.utils.figures import save_figure
from endofm.utils.io import atomic_write_json
from endofm.utils.progress import progress

KUMC_CLASSES = ClassSet(("adenomatous", "hyperplastic"), (1, 2))
# KUMC's label → name; a saved detector's config.json ``classes`` names any other data's
CLASS_NAMES = dict(zip(KUMC_CLASSES.ids, KUMC_CLASSES.names, strict=True))


@torch.no_grad()
def predict(model: nn.Module, dataset: KumcClips, device: torch.device, precision: str = "fp32",
            batch_size: int = 4, num_workers: int = 0) -> list[FrameDetections]:
    """One :class:`FrameDetections` per dataset item, in dataset order (``model`` in eval
    mode)."""
    frames: list[FrameDetections] = []
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                        collate_fn=collate)
    for clips, targets, _ in progress(loader, desc="evaluate", unit="batch"):
        with autocast(device, precision):
            outputs = model([c.to(device) for c in clips])
        for clip, target, out in zip(clips, targets, outputs, strict=True):
            frames.append(FrameDetections(
                target["boxes"].numpy(), target["labels"].numpy(),
                out["boxes"].float().cpu().numpy(), out["scores"].float().cpu().numpy(),
                out["labels"].cpu().numpy(), width=clip.shape[-1], height=clip.shape[-2],
                crowd_boxes=target["crowd_boxes"].numpy(),
                crowd_labels=target["crowd_labels"].numpy()))
    return frames


def label_colours(num_classes: int) -> dict[int, tuple]:
    """A matplotlib colour per label ``1..C`` (red first, as KUMC's adenomatous)."""
    from matplotlib import colormaps

    palette = colormaps["tab10" if num_classes <= 10 else "tab20"]
    order = [3, 9, 1, 2, 4, 5, 6, 7, 8, 0] if num_classes <= 10 else list(range(20))
    return {c: palette(order[(c - 1) % len(order)]) for c in range(1, num_classes + 1)}


def _draw(ax: Axes, dataset: KumcClips, i: int, det: FrameDetections,
          threshold: float, classes: ClassSet) -> None:
    frame = dataset.frame(i)
    ax.imshow(read_image(frame.image))
    for box in det.gt_boxes:
        ax.add_patch(Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False,
                               edgecolor="lime", linestyle="--", linewidth=1))
    for box, score, label in zip(det.boxes, det.scores, det.labels, strict=True):
        if score < threshold:
            continue
        colour = label_colours(len(classes)).get(int(label), "yellow")
        name = classes.names[int(label) - 1] if 1 <= label <= len(classes) else str(label)
        ax.add_patch(Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False,
                               edgecolor=colour, linewidth=1.5))
        ax.text(box[0], box[1], f"{name} {score:.2f}",
                color="black", fontsize=6, backgroundcolor=colour, va="bottom")
    ax.set_title(frame.image.name, fontsize=7)
    ax.axis("off")


def save_contact_sheets(dataset: KumcClips, frames: list[FrameDetections], out_dir: Path,
                        threshold: float = 0.5, columns: int = 6,
                        classes: ClassSet = KUMC_CLASSES) -> list[Path]:
    """``out_dir/<video>.png`` per video: every frame with ground truth (green, dashed) and
    predictions scoring >= ``threshold`` (class colour, class name and score), and a legend of
    the class colours."""
    by_video: dict[int, list[int]] = {}
    for i, (v, _) in enumerate(dataset.index):
        by_video.setdefault(v, []).append(i)
    paths = []
    for v, items in by_video.items():
        rows = math.ceil(len(items) / columns)
        cols = min(columns, len(items))
        fig = Figure(figsize=(2 * cols, 2 * rows))
        axes = fig.subplots(rows, cols, squeeze=False)
        for ax in axes.flat[len(items):]:
            ax.axis("off")
        for ax, i in zip(axes.flat, items, strict=False):
            _draw(ax, dataset, i, frames[i], threshold, classes)
        colours = label_colours(len(classes))
        fig.legend(handles=[Patch(color=colours[c + 1], label=n)
                            for c, n in enumerate(classes.names)],
                   loc="lower center", ncol=min(len(classes), 6), fontsize=6, frameon=False)
        fig.tight_layout(rect=(0, 0.06, 1, 1))
        path = out_dir / f"{dataset.videos[v].name.replace('/', '_')}.png"
        paths.append(save_figure(fig, path))
    return paths


def coco_prediction_file(dataset: KumcClips, frames: list[FrameDetections],
                         classes: ClassSet) -> dict:
    """COCO JSON: ``images`` (with ``file_name``), ground-truth ``annotations``,
    ``categories`` (the dataset's own ids and names) and the model's ``predictions`` (result
    records with those category ids, image ids shared)."""
    coco = coco_ground_truth(frames, len(classes), classes.ids, classes.names)
    for image in coco["images"]:
        image["file_name"] = str(dataset.frame(image["id"]).image)
    coco["predictions"] = coco_predictions(frames, classes.ids)
    return coco


def evaluate_clips(model: nn.Module, dataset: KumcClips, device: torch.device,
                   precision: str = "fp32", classes: ClassSet = KUMC_CLASSES,
                   threshold: float = 0.5, out_dir: Path | None = None, batch_size: int = 4,
                   choose: bool = False) -> dict:
    """Metrics (:data:`endofm.tasks.detection.metrics.METRIC_KEYS` plus ``num_frames``,
    ``num_videos``); with ``out_dir`` also ``predictions.json`` and ``sheets/<video>.png``.
    The caller puts the model in eval mode (the engine does).

    The thresholded metrics are taken at the model's ``operating_threshold`` when it has one,
    else at ``threshold`` (``score_threshold`` says which); ``at_release_threshold`` repeats
    them at ``threshold`` (the release's 0.5). ``choose=True`` (validation) first sets the
    model's ``operating_threshold`` to the score threshold that maximises ``f1_center`` on
    these clips.
    """
    frames = predict(model, dataset, device, precision, batch_size)
    if choose:
        model.operating_threshold = choose_threshold(frames, threshold)[0]
    operating = getattr(model, "operating_threshold", None)
    used = threshold if operating is None else float(operating)
    result: dict = detection_metrics(frames, len(classes), used, classes.names, classes.ids)
    result |= {"score_threshold": used, "num_frames": len(frames),
               "num_videos": len(dataset.videos),
               "at_release_threshold": {"score_threshold": threshold}
               | threshold_metrics(frames, threshold)}
    if out_dir is not None:
        out_dir = Path(out_dir)
        atomic_write_json(coco_prediction_file(dataset, frames, classes),
                          out_dir / "predictions.json")
        save_contact_sheets(dataset, frames, out_dir / "sheets", used, classes=classes)
    return result
