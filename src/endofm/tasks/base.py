"""The downstream task interface and the settings every task shares.

A task (classification, segmentation, detection) is a thin class on top of the engine
(``endofm.tasks.engine``), registered with its readers, predictor and report in the task
registry (:mod:`endofm.tasks.registry`): it reads its items (videos, sequences) for a split
through the reader of its data format, wraps training items in a torch ``Dataset``, computes the
loss of a batch, evaluates a model on items, and saves and loads its fine-tuned model. The
engine owns everything else: devices, precision, distributed training, the optimiser and
schedule, selection protocol, checkpoints and resume.

A task's config (``config_class``) is a dataclass deriving from :class:`EngineConfig`: the
engine's ``optim``/``train``/``protocol`` sections plus the task's own (``model``, ``data``, …),
so a YAML file or override reads ``data.img_size=64`` or ``optim.lr=0.01`` alike.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from endofm.config import from_dict
from endofm.models.config import BackboneConfig
from endofm.tasks.registry import TaskSpec, get_task
from endofm.train.optim import ClipMode, OptimizerName
from endofm.train.settings import TrainSettings
from endofm.utils.checks import require_at_least, require_in_range

T = TypeVar("T")


@dataclass
class OptimConfig:
    """Optimiser and per-iteration schedule (linear warm-up, then cosine to ``min_lr``)."""

    name: OptimizerName = OptimizerName.sgd  # optimiser: sgd or adamw
    lr: float = 1e-3  # peak learning rate (per 256 clips when scale_lr_with_batch)
    scale_lr_with_batch: bool = True  # lr × global batch / 256, as the release
    momentum: float = 0.9  # SGD momentum (sgd only)
    weight_decay: float = 0.0  # weight decay
    backbone_lr_mult: float = 1.0  # lr multiplier for parameters under ``backbone.``
    warmup_epochs: float = 0.0  # epochs of linear lr warm-up (fractions allowed)
    min_lr: float = 0.0  # lr at the end of the cosine schedule
    clip_grad: float = 0.0  # 0 = no clipping
    clip_mode: ClipMode = ClipMode["global"]  # global norm | per_param (each tensor)
    decay_embeddings: bool = False  # True: decay the positional tables and CLS token too

    def __post_init__(self) -> None:
        require_at_least(self, "optim", 0, "lr", "weight_decay", "backbone_lr_mult",
                         "warmup_epochs", "min_lr", "clip_grad")
        require_in_range(self, "optim", 0, 1, "momentum")


@dataclass
class TrainConfig(TrainSettings):
    """The shared ``train`` keys (:class:`~endofm.train.settings.TrainSettings`: seed, device,
    precision, progress, epochs, batch_size, num_workers, log_every) and fine-tuning's own."""

    # at least this many training samples (clips) seen: a training set too small for them in
    # ``epochs`` trains for more whole epochs, so the schedule does not shrink with the data;
    # counted in samples, not steps, so the batch size and the number of processes leave it
    # alone (0: off)
    min_samples: int = 0
    accum_steps: int = 1  # gradient accumulation
    freeze_backbone: bool = False  # linear probe: only the head trains
    eval_every: int = 1  # epochs between selection evaluations
    patience: int = 0  # early stopping: evaluations without a better selection score (0: off)
    # exponential moving average of the weights, updated after every optimiser step (0: off);
    # with it the averaged weights are the ones evaluated, selected, kept and tested
    ema_decay: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        require_at_least(self, "train", 1, "accum_steps", "eval_every")
        require_at_least(self, "train", 0, "min_samples", "patience")
        require_in_range(self, "train", 0, 1, "ema_decay", high_open=True)


class Selection(StrEnum):
    val = "val"
    fixed = "fixed"
    test = "test"


@dataclass
class ProtocolConfig:
    """How the reported weights are chosen.

    ``val`` (default): a validation part is carved from the training items (by item, so no
    video or sequence is in both) and the epoch with the best validation score is kept;
    ``fixed``: the last epoch is kept, nothing is carved out; ``test``: the release's
    behaviour — the epoch with the best *test* score is kept (optimistic; reported as such).
    The test split is evaluated once, at the end, with the kept weights.
    """

    # which epoch's weights are kept: val, fixed (last) or test (the release's)
    selection: Selection = Selection.val
    # fraction of the training items carved out for validation (selection=val)
    val_fraction: float = 0.2
    val_seed: int = 0  # seeds the validation carve-out and (own data) the test carve-out
    # own data without a test split of its own: this fraction of the videos is carved out
    test_fraction: float = 0.2

    def __post_init__(self) -> None:
        require_in_range(self, "protocol", 0, 1, "val_fraction", low_open=True, high_open=True)
        require_in_range(self, "protocol", 0, 1, "test_fraction", high_open=True)


@dataclass
class EngineConfig:
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)


class InputKind(StrEnum):
    """What a fine-tuned model is fed. ``windows``: the video's clips ``[B, 3, T, H, W]``
    (``endofm predict`` streams them through the model); ``features``: one whole video's window
    features ``[1, D, N]`` (one row per window its backbone encodes; the task's own commands
    extract them first)."""

    windows = "windows"
    features = "features"


@dataclass(frozen=True)
class ModelInput:
    """What a fine-tuned model takes: clips of ``num_frames`` frames, ``frame_step`` apart in
    the video (frames, or seconds as ``"0.05s"``), at ``img_size`` pixels (detection: the
    detector's ``min_size``); with ``kind`` ``features`` these describe the windows its
    backbone encodes into the model's input rows."""

    num_frames: int
    img_size: int
    frame_step: int | str = 1
    kind: InputKind = InputKind.windows


class Task(ABC):
    """One downstream task. ``cfg`` is the merged config (task sections + engine sections)."""

    name: ClassVar[str]
    config_class: ClassVar[type[EngineConfig]]
    selection_metric: ClassVar[str]
    test_split: ClassVar[str] = "test"

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg

    @classmethod
    def spec(cls) -> TaskSpec:
        """The task's registry entry (its kind, data formats, predictor, report)."""
        return get_task(cls.name)

    @property
    def kind(self) -> str:
        """The ``kind`` the task's saved model folders record."""
        return self.spec().kind

    def backbone_settings(self, pretrained: str | Path | None) -> BackboneConfig:
        """``model.backbone`` with ``pretrained`` (when given) as its weights."""
        backbone = self.cfg.model.backbone
        if pretrained is None:
            return backbone
        return dataclasses.replace(backbone, pretrained=str(pretrained))

    @abstractmethod
    def build_model(self, pretrained: str | Path | None) -> nn.Module:
        """The model to fine-tune; its backbone parameters are named ``backbone.*``."""

    @abstractmethod
    def read_items(self, root: str | Path, split: str) -> list:
        """The items (videos, sequences) of ``split`` (``"train"`` or ``test_split``), read in
        the layout ``data.format`` names (one of the task's registered ``formats``; ``auto``
        detects it)."""

    @abstractmethod
    def train_dataset(self, items: Sequence) -> Dataset:
        """A dataset of training samples drawn from ``items``."""

    def bind_data(self, root: str | Path) -> None:
        """Called with the data root before any item is read (e.g. to resolve the data's
        format); default: nothing."""
        return None

    def given_split(self, root: str | Path, split: str) -> list | None:
        """The items of ``split`` (``"val"``) when the data itself names that split, else
        ``None`` (the engine carves a validation split from the training items); default:
        ``None``."""
        return None

    def item_groups(self, items: Sequence) -> list[str] | None:
        """One video key per item: items sharing a key are never split apart by a carve-out
        (default ``None``: every item is its own video)."""
        return None

    def describe_item(self, item: Any) -> str:
        """The item as ``splits.json`` lists it: its path or name."""
        return str(getattr(item, "path", getattr(item, "name", item)))

    def collate(self, batch: list) -> Any:
        """Combine samples into a batch (default: torch's)."""
        return torch.utils.data.default_collate(batch)

    def prepare(self, model: nn.Module, items: Sequence, device: torch.device,
                precision: str) -> None:
        """Called once the model is on its device, before training (e.g. a warm start of the
        head from ``items``); default: nothing."""
        return None

    def stratify_labels(self, items: Sequence) -> list[int] | None:
        """One class label per item to stratify the validation carve-out by, or ``None``
        (default: a plain seeded shuffle)."""
        return None

    def select_initial(self) -> bool:
        """Whether the weights as :meth:`prepare` leaves them are a selection candidate
        ("epoch 0", evaluated on the validation carve-out before training); default: no."""
        return False

    @abstractmethod
    def loss(self, model: nn.Module, batch: Any) -> Tensor:
        """The scalar training loss of ``batch`` (already on the model's device)."""

    @abstractmethod
    def evaluate(self, model: nn.Module, items: Sequence, device: torch.device,
                 precision: str, out_dir: Path | None = None) -> dict[str, Any]:
        """Metrics of ``model`` on ``items``; with ``out_dir``, also write the artefacts
        (predictions, plots). Returns plain JSON-able values."""

    @abstractmethod
    def save_model(self, model: nn.Module, out_dir: Path) -> Path:
        """Write the fine-tuned model in the project's format."""

    @abstractmethod
    def load_model(self, path: str | Path) -> nn.Module:
        """Load a fine-tuned model (the project's format and, where one exists, the release's).
        A missing or unloadable checkpoint is an error. The config is left as it is."""

    def saved_config(self, path: str | Path) -> Any:
        """The config to evaluate the model saved at ``path`` with: a copy of ``cfg`` with the
        settings the model was trained with (input size, clip length, …). Default: ``cfg``."""
        return self.cfg

    def model_input(self, model: nn.Module) -> ModelInput:
        """The clips ``model`` (loaded with this task's :meth:`saved_config`) takes. Default:
        its backbone's frame count and size, consecutive frames."""
        return ModelInput(model.backbone.num_frames, model.backbone.img_size)


def backbone_caveat(model: nn.Module) -> str | None:
    """What a task model says about using its ``backbone`` alone, e.g. for feature extraction
    (its ``backbone_caveat()``: a part of the backbone it never trained), else ``None``."""
    caveat = getattr(model, "backbone_caveat", None)
    return caveat() if callable(caveat) else None


def saved_model_settings(schema: type[T], saved: Mapping[str, Any]) -> T:
    """The ``model`` section a task folder's ``config.json`` records, as ``schema``, without the
    backbone's initial weights (the folder holds the trained ones)."""
    backbone = {**saved.get("backbone", {}), "pretrained": None}
    return from_dict(schema, {**saved, "backbone": backbone})


def task_config_schema(task_cls: type[Task]) -> type[EngineConfig]:
    """The task's config dataclass: the engine's ``optim``/``train``/``protocol`` sections and
    the task's own (``model``, ``data``, …)."""
    return task_cls.config_class

