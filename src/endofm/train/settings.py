"""The ``train`` section every training command shares, and the lr batch-scaling rule.

Pre-training (``endofm pretrain``) and fine-tuning (``endofm finetune``) both read their seed,
device, precision, progress display, epochs, per-process batch size, loader workers and log
interval from ``train.*``; each command's own section derives from :class:`TrainSettings` and
only changes defaults or adds keys. ``optim.scale_lr_with_batch`` is the release's rule for
both: the configured ``optim.lr`` is per 256 clips, multiplied by the global batch / 256.
"""

from __future__ import annotations

from dataclasses import dataclass

from endofm.utils.checks import require_at_least
from endofm.utils.device import Precision

LR_REFERENCE_BATCH = 256


@dataclass
class TrainSettings:
    """The shared keys of a ``train`` section (a command's section sets its own defaults)."""

    seed: int = 0  # the initial weights, data order, augmentations and masks
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: Precision = Precision.fp32  # fp32, or mixed precision (autocast) in fp16 or bf16
    progress: bool = True  # progress bar / lines (``--quiet`` turns them off everywhere)
    epochs: int = 20  # passes over the training data
    batch_size: int = 4  # per process
    num_workers: int = 0  # data-loader worker processes (0: load in the training process)
    log_every: int = 10  # optimiser steps between JSONL log rows

    def __post_init__(self) -> None:
        require_at_least(self, "train", 1, "epochs", "batch_size", "log_every")
        require_at_least(self, "train", 0, "num_workers")


def scaled_lr(lr: float, global_batch: int, scale_with_batch: bool) -> float:
    """``lr × global_batch / 256`` when ``scale_with_batch`` (the release's rule), else ``lr``."""
    return lr * global_batch / LR_REFERENCE_BATCH if scale_with_batch else lr
