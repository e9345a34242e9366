"""Stage 1 with ``features.source=finetuned``: the backbone fine-tuned as a window-level
phase classifier (backbone CLS → linear) on the training videos, before it extracts the
features the temporal model reads.

Training samples are random windows (the extraction's window shape: ``features.num_frames``
frames ``features.frame_step`` apart), resized to a ``features.size`` short side, randomly
cropped and flipped, labelled with the phase at their centre. Selection scores the window
accuracy on evenly spaced windows of the validation videos.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from endofm.data import open_video
from endofm.data.clips import random_crop
from endofm.data.phase import PhaseVideo
from endofm.data.transforms import (
    KINETICS_MEAN,
    KINETICS_STD,
    center_crop,
    hflip,
    normalize,
    short_side_resize,
    to_clip,
)
from endofm.models import BackboneConfig, create_backbone
from endofm.tasks.base import EngineConfig, OptimConfig, Task, TrainConfig
from endofm.tasks.classification.model import VideoClassifier, load_classifier
from endofm.tasks.phase.config import PhaseConfig, PhaseDataConfig, PhaseFeaturesConfig
from endofm.tasks.phase.data import PhaseSplits
from endofm.train.optim import OptimizerName
from endofm.utils.device import autocast

EVAL_WINDOWS = 32  # evenly spaced windows scored per validation / test video


@dataclass
class PhaseWindowConfig(EngineConfig):
    """The window classifier's run: the phase task's ``features`` and ``data`` sections with
    the engine's, its optimiser and epochs from ``features.window``."""

    features: PhaseFeaturesConfig = field(default_factory=PhaseFeaturesConfig)
    data: PhaseDataConfig = field(default_factory=PhaseDataConfig)

    def __post_init__(self) -> None:
        f = self.features
        f.backbone.bind(f.size, f.num_frames, "features.size/features.num_frames")


def window_config(cfg: PhaseConfig) -> PhaseWindowConfig:
    """The window classifier's settings derived from the phase task's."""
    w = cfg.features.window
    optim = OptimConfig(name=OptimizerName.adamw, lr=w.lr, scale_lr_with_batch=False,
                        weight_decay=w.weight_decay, backbone_lr_mult=w.backbone_lr_mult)
    train = TrainConfig(epochs=w.epochs, batch_size=w.batch_size, device=cfg.train.device,
                        precision=cfg.train.precision, seed=cfg.train.seed,
                        num_workers=cfg.train.num_workers, progress=cfg.train.progress,
                        log_every=cfg.train.log_every)
    return PhaseWindowConfig(optim=optim, train=train, protocol=cfg.protocol,
                             features=cfg.features, data=cfg.data)


def step_frames(frame_step: str, fps: float) -> int:
    """A frame step in frames (``"3"``) or seconds (``"0.125s"``) as frames ≥ 1 at ``fps``
    (the extraction's reading of the setting)."""
    text = str(frame_step).strip()
    return max(1, round(float(text[:-1]) * fps)) if text.endswith("s") else max(1, int(text))


def window_at(video_frames: int, fps: float, cfg: PhaseFeaturesConfig, start_s: float
              ) -> tuple[np.ndarray, float]:
    """Frame indices ``[T]`` of the window starting at ``start_s`` (clamped to the video) and
    its centre in seconds."""
    step = step_frames(cfg.step(), fps)
    first = min(int(round(start_s * fps)), video_frames - 1)
    frames = np.minimum(first + step * np.arange(cfg.num_frames), video_frames - 1)
    return frames, (frames[0] + frames[-1] + 1) / 2 / fps


def load_window(video: PhaseVideo, cfg: PhaseFeaturesConfig, start_s: float, train: bool
                ) -> tuple[Tensor, int]:
    """One window as a normalised clip ``[3, T, S, S]`` and the phase at its centre."""
    source = open_video(video.path)
    frames, centre = window_at(source.num_frames, source.fps, cfg, start_s)
    clip = short_side_resize(to_clip(source.read(frames)), cfg.size)
    if train:
        clip = random_crop(clip, cfg.size)
        if torch.rand(()) < 0.5:
            clip = hflip(clip)
    else:
        clip = center_crop(clip, cfg.size)
    label = int(video.phases.at(np.array([centre]))[0])
    return normalize(clip, KINETICS_MEAN, KINETICS_STD), label


class RandomWindows(Dataset):
    """``windows_per_video`` random windows of each training video per epoch."""

    def __init__(self, videos: Sequence[PhaseVideo], cfg: PhaseFeaturesConfig) -> None:
        self.videos, self.cfg = list(videos), cfg

    def __len__(self) -> int:
        return len(self.videos) * self.cfg.window.windows_per_video

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        video = self.videos[i % len(self.videos)]
        start = float(torch.rand(())) * video.phases.duration_s
        return load_window(video, self.cfg, start, train=True)


class PhaseWindowTask(Task):
    """Window-level phase classification (stage 1 of ``features.source=finetuned``)."""

    name = "phase_window"
    config_class = PhaseWindowConfig
    selection_metric = "window_accuracy"
    test_split = "test"

    def __init__(self, cfg: PhaseWindowConfig) -> None:
        super().__init__(cfg)
        self.splits = PhaseSplits(cfg.data, cfg.protocol.selection)

    def read_items(self, root: str | Path, split: str) -> list[PhaseVideo]:
        return self.splits.videos(root, split)

    def given_split(self, root: str | Path, split: str) -> list | None:
        """As :meth:`PhaseTask.given_split`: the dataset's validation videos select."""
        standard = split == "val" and self.splits.standard_val(root)
        return self.read_items(root, "val") if standard else None

    def backbone_settings(self, pretrained: str | Path | None) -> BackboneConfig:
        """``features.backbone`` with ``pretrained`` (when given) as its weights."""
        backbone = self.cfg.features.backbone
        return backbone if pretrained is None else dataclasses.replace(
            backbone, pretrained=str(pretrained))

    def build_model(self, pretrained: str | Path | None) -> nn.Module:
        backbone = create_backbone(self.backbone_settings(pretrained))
        return VideoClassifier(backbone, len(self.splits.dataset.phases))

    def train_dataset(self, items: Sequence[PhaseVideo]) -> Dataset:
        return RandomWindows(items, self.cfg.features)

    def loss(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        clips, labels = batch
        return F.cross_entropy(model(clips), labels)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, items: Sequence[PhaseVideo], device: torch.device,
                 precision: str, out_dir: Path | None = None) -> dict[str, Any]:
        """Accuracy over :data:`EVAL_WINDOWS` evenly spaced windows of each video."""
        right = total = 0
        for video in items:
            starts = np.linspace(0, video.phases.duration_s, EVAL_WINDOWS, endpoint=False)
            for chunk in np.array_split(starts, max(1, EVAL_WINDOWS // 8)):
                clips, labels = zip(*(load_window(video, self.cfg.features, float(s), False)
                                      for s in chunk), strict=True)
                with autocast(device, precision):
                    logits = model(torch.stack(clips).to(device)).float()
                right += int((logits.argmax(1).cpu() == torch.tensor(labels)).sum())
                total += len(labels)
        return {"window_accuracy": right / max(total, 1), "windows": total}

    def save_model(self, model: nn.Module, out_dir: Path) -> Path:
        return getattr(model, "module", model).save_pretrained(
            out_dir, extra={"phases": list(self.splits.dataset.phases)})

    def load_model(self, path: str | Path) -> nn.Module:
        return load_classifier(path)
