"""The ``phase`` task's settings: window features (stage 1), the temporal model and its loss
(stage 2), the data and the evaluation conventions."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from endofm.models.config import BackboneConfig
from endofm.tasks.base import EngineConfig, OptimConfig, TrainConfig
from endofm.tasks.phase.metrics import RelaxedMode
from endofm.train.optim import OptimizerName
from endofm.utils.checks import require_at_least, require_in_range


class FeatureSource(StrEnum):
    """``frozen``: the backbone as given; ``finetuned``: the backbone first fine-tuned as a
    window-level phase classifier on the training videos."""

    frozen = "frozen"
    finetuned = "finetuned"


@dataclass
class WindowFinetuneConfig:
    """Stage 1 with ``features.source=finetuned``: a window classifier (backbone CLS → linear)
    trained on random windows of the training videos, labelled with the phase at their
    centre."""

    epochs: int = 3  # epochs of window fine-tuning
    windows_per_video: int = 32  # random windows drawn per training video per epoch
    batch_size: int = 8  # windows per optimiser step
    lr: float = 1e-4  # AdamW
    backbone_lr_mult: float = 1.0  # lr multiplier for the backbone's parameters
    weight_decay: float = 0.05  # AdamW weight decay

    def __post_init__(self) -> None:
        require_at_least(self, "features.window", 1, "epochs", "windows_per_video",
                         "batch_size")


@dataclass
class PhaseFeaturesConfig:
    """Stage 1: one feature vector (the backbone's CLS) per window, ``rate`` windows per
    second; window ``k`` starts at ``k / rate`` s and holds ``num_frames`` frames
    ``frame_step`` apart (frames, or seconds as ``"0.125s"``; default: the window spans one
    row, ``1 / (rate × num_frames)`` s). ``dir`` is where they are cached (set by
    ``endofm finetune phase`` to ``RUN/features``)."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    # frozen backbone, or finetuned first as a window classifier (features.window)
    source: FeatureSource = FeatureSource.frozen
    rate: float = 1.0  # windows (feature rows) per second of video
    num_frames: int = 8  # frames per window
    # between a window's frames: frames, or seconds as "0.125s"; null: the window spans one row
    frame_step: str | None = None
    size: int = 224  # side (px) of the frames the backbone sees
    batch_size: int = 8  # windows per forward pass during extraction
    num_workers: int = 0  # decoding worker processes during extraction (0: in the main process)
    dir: str | None = None  # feature cache folder (endofm finetune phase sets RUN/features)
    window: WindowFinetuneConfig = field(default_factory=WindowFinetuneConfig)

    def __post_init__(self) -> None:
        require_at_least(self, "features", 1, "num_frames", "size", "batch_size")
        require_at_least(self, "features", 0, "num_workers")
        require_in_range(self, "features", 0, 30, "rate", low_open=True)  # windows per second

    def step(self) -> str:
        """``frame_step`` as the window settings take it."""
        return self.frame_step or f"{1.0 / (self.rate * self.num_frames):g}s"

    def stride(self) -> str:
        return f"{1.0 / self.rate:g}s"


class Validation(StrEnum):
    """``standard``: the dataset's own validation videos (Cholec80 33–40, AutoLaparo 11–14)
    when ``protocol.selection=val``; ``carve``: the engine's seeded carve-out."""

    standard = "standard"
    carve = "carve"


@dataclass
class PhaseDataConfig:
    layout: str = "auto"  # auto | cholec80 | autolaparo | segments
    phases: list[str] = field(default_factory=list)  # default: the layout's own names
    # standard: the dataset's own validation videos; carve: the engine's seeded carve-out
    validation: Validation = Validation.standard


@dataclass
class PhaseModelConfig:
    """The multi-stage TCN (:class:`endofm.tasks.phase.model.PhaseTCN`)."""

    stages: int = 4  # TCN stages (each after the first refines the previous one's softmax)
    layers: int = 10  # dilated residual layers per stage (dilation 1, 2, 4, ...)
    channels: int = 64  # width of each stage's convolutions
    dropout: float = 0.5  # dropout in each residual layer
    causal: bool = False  # True: no future rows (online)
    tools: bool = True  # a tool-presence head when the training videos have tool annotations

    def __post_init__(self) -> None:
        require_at_least(self, "model", 1, "stages", "layers", "channels")
        require_in_range(self, "model", 0, 1, "dropout", high_open=True)


@dataclass
class PhaseLossConfig:
    smooth_weight: float = 0.15  # λ of the truncated MSE smoothing term (MS-TCN)
    smooth_clamp: float = 16.0  # τ² (τ = 4)
    class_balanced: bool = False  # median-frequency class weights in the cross-entropy
    tool_weight: float = 1.0  # weight of the tools' binary cross-entropy

    def __post_init__(self) -> None:
        require_at_least(self, "loss", 0, "smooth_weight", "smooth_clamp", "tool_weight")


@dataclass
class PhaseEvalConfig:
    # relaxed-boundary metrics: official (the script's indexing) or corrected
    relaxed: RelaxedMode = RelaxedMode.official


def phase_optim() -> OptimConfig:
    return OptimConfig(name=OptimizerName.adamw, lr=5e-4, scale_lr_with_batch=False,
                       weight_decay=1e-4)


def phase_train() -> TrainConfig:
    return TrainConfig(epochs=50, batch_size=1)


@dataclass
class PhaseConfig(EngineConfig):
    """The phase task's config: its sections plus the engine's (AdamW 5e-4, 50 epochs, one
    video per step by default)."""

    optim: OptimConfig = field(default_factory=phase_optim)
    train: TrainConfig = field(default_factory=phase_train)
    features: PhaseFeaturesConfig = field(default_factory=PhaseFeaturesConfig)
    data: PhaseDataConfig = field(default_factory=PhaseDataConfig)
    model: PhaseModelConfig = field(default_factory=PhaseModelConfig)
    loss: PhaseLossConfig = field(default_factory=PhaseLossConfig)
    eval: PhaseEvalConfig = field(default_factory=PhaseEvalConfig)

    def __post_init__(self) -> None:
        f = self.features
        f.backbone.bind(f.size, f.num_frames, "features.size/features.num_frames")
