"""The pre-training config schema; defaults are the release's recipe
(docs/release.md#pre-training-recipe) except where a field says otherwise (each such default
names the release's value; docs/release.md#where-endofm-differs)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

from endofm.data.views import PretrainViewsConfig
from endofm.models.config import BackboneConfig
from endofm.ssl.diagnostics import CollapseConfig
from endofm.train.optim import ClipMode
from endofm.train.settings import TrainSettings
from endofm.utils.checks import require_at_least, require_in_range, require_interval
from endofm.utils.device import Precision


class LossCombine(StrEnum):
    """``release``: the mean over all 18 view pairs; ``sum``: L_cv + L_dm."""

    release = "release"
    sum = "sum"


class Centering(StrEnum):
    """How the teacher's outputs are centred: ``running`` (the release's EMA centre) or
    ``sinkhorn_knopp`` (EndoFM-LV / DINOv2)."""

    running = "running"
    sinkhorn_knopp = "sinkhorn_knopp"


class GlobalPairing(StrEnum):
    """``cross``: L_dm pairs the 2 global views with each other; ``same``: each with itself."""

    cross = "cross"
    same = "same"


class MaskMode(StrEnum):
    """iBOT block masks: ``tube`` (the same patches in every frame) or ``frame`` (per frame)."""

    tube = "tube"
    frame = "frame"


class TeacherMode(StrEnum):
    """``eval``: no drop path, eval mode (DINOv2); ``release``: the student's drop path, train
    mode (the release)."""

    eval = "eval"
    release = "release"


# ``skip``: counted and reported; ``raise``: the first broken file stops the run
OnError = StrEnum("OnError", [("skip", "skip"), ("raise", "raise")])


@dataclass
class SSLModelConfig:
    """The backbone (``pretrained``: Endo-FM, SVT Kinetics-400 or any ``create_model``
    checkpoint; its size and frame count follow ``views.global_size`` / ``views.num_frames``)."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    compile: bool = False  # torch.compile the student (a graph per view shape)


@dataclass
class HeadConfig:
    out_dim: int = 65536  # prototypes: the head's output dimension K the DINO loss compares
    hidden_dim: int = 2048  # width of the head's hidden MLP layers
    bottleneck_dim: int = 256  # width of the L2-normalised bottleneck before the last layer
    num_layers: int = 3  # linear layers of the MLP (the last one into the bottleneck)
    norm_last_layer: bool = True  # freeze the last (weight-normalised) layer's norm at 1

    def __post_init__(self) -> None:
        require_at_least(self, "head", 1, "out_dim", "hidden_dim", "bottleneck_dim", "num_layers")


@dataclass
class SSLLossConfig:
    teacher_temp: float = 0.04  # teacher softmax temperature after its warm-up
    warmup_teacher_temp: float = 0.04  # teacher temperature at step 0 (linear to teacher_temp)
    warmup_teacher_temp_epochs: int = 0  # epochs of the teacher temperature warm-up
    student_temp: float = 0.1  # student softmax temperature
    center_momentum: float = 0.9  # EMA momentum of the teacher's running centre (centering=running)
    # release: mean over all view pairs; sum: L_cv + L_dm (the paper's formula)
    combine: LossCombine = LossCombine.release
    # Beyond the release (EndoFM-LV / DINOv2; docs/successor.md):
    centering: Centering = Centering.running  # teacher centring: running (EMA) or sinkhorn_knopp
    sk_iterations: int = 3  # Sinkhorn-Knopp iterations (centering=sinkhorn_knopp)
    # cross: pair the 2 global views with each other; same: each with itself
    global_pairing: GlobalPairing = GlobalPairing.cross
    ibot_weight: float = 0.0  # masked-patch loss; 0: off
    ibot_separate_head: bool = False  # False: the DINO head is shared by CLS and patch tokens
    # [lo, hi] fraction of a masked crop's patches masked (drawn per crop)
    ibot_mask_ratio: list[float] = field(default_factory=lambda: [0.1, 0.5])
    ibot_mask_probability: float = 0.5  # fraction of global crops that are masked
    # tube: the same patches masked in every frame; frame: per frame
    ibot_mask_mode: MaskMode = MaskMode.tube
    ibot_mask_input: bool = True  # False: the student sees the whole clip (EndoFM-LV's code)
    koleo_weight: float = 0.0  # KoLeo on the student's global-view CLS features; 0: off

    def __post_init__(self) -> None:
        require_in_range(self, "loss", 0, math.inf, "teacher_temp", "warmup_teacher_temp",
                         "student_temp", low_open=True)
        require_in_range(self, "loss", 0, 1, "center_momentum", "ibot_mask_probability")
        require_at_least(self, "loss", 0, "warmup_teacher_temp_epochs", "ibot_weight",
                         "koleo_weight")
        require_at_least(self, "loss", 1, "sk_iterations")
        require_interval(self, "loss", 0, 1, "ibot_mask_ratio")


@dataclass
class SSLOptimConfig:
    lr: float = 5e-4  # per 256 clips: × global batch / 256 (scale_lr_with_batch)
    scale_lr_with_batch: bool = True  # lr × global batch / 256, as the release
    min_lr: float = 1e-6  # lr at the end of the cosine schedule
    warmup_epochs: float = 10  # epochs of linear lr warm-up (fractions allowed)
    weight_decay: float = 0.04  # weight decay at step 0 (cosine to weight_decay_end)
    weight_decay_end: float = 0.4  # weight decay at the last step
    momentum_teacher: float = 0.996  # teacher EMA momentum at step 0 (cosine to 1 at the last step)
    clip_grad: float = 3.0  # gradient norm clipping threshold (clip_mode; 0: off)
    clip_mode: ClipMode = ClipMode["global"]  # per_param: the release's clip_gradients
    decay_embeddings: bool = False  # True: the release decays pos/time tables and CLS token
    freeze_last_layer: int = 1  # epochs

    def __post_init__(self) -> None:
        require_at_least(self, "optim", 0, "lr", "min_lr", "warmup_epochs",
                         "weight_decay", "weight_decay_end", "clip_grad", "freeze_last_layer")
        require_in_range(self, "optim", 0, 1, "momentum_teacher")


@dataclass
class SSLDataConfig:
    # a video that fails to decode: skip it (counted and reported) or stop
    on_error: OnError = OnError.skip
    # frame rate of videos given as folders of frames (files carry their own)
    folder_fps: float = 30.0
    # {source: weight}: sources drawn in proportion to their weight (1.0 unlisted), however many
    # clips each has; {}: uniform over clips
    source_weights: dict[str, float] = field(default_factory=dict)
    # decode every video once at the start and keep its frames in memory (small datasets:
    # frames x H x W x 3 bytes at views.decode_short_side, reported at the start)
    keep_decoded: bool = False

    def __post_init__(self) -> None:
        require_in_range(self, "data", 0, math.inf, "folder_fps", low_open=True)
        for source, weight in self.source_weights.items():
            if weight < 0:
                raise ValueError(f"data.source_weights.{source} must be >= 0, got {weight}")


@dataclass
class SSLConfig:
    # eval: the teacher has no drop path and stays in eval mode (DINOv2); release: the teacher
    # keeps the student's drop path rate and stays in train mode, so its targets are computed
    # with drop path active (the release). Either way it moves only by EMA.
    teacher: TeacherMode = TeacherMode.eval


@dataclass
class PretrainTrainConfig(TrainSettings):
    """The shared ``train`` keys (:class:`~endofm.train.settings.TrainSettings`) with
    pre-training's defaults, and its checkpoint cadence."""

    precision: Precision = Precision.fp16  # the release: fp16 with a grad scaler
    # The release's train_ssl.py defaults to 100 epochs (its shell script does not override
    # it); the maintainers told users that about 30 suffice, which is what endofm uses.
    epochs: int = 30
    batch_size: int = 3  # per process
    num_workers: int = 4
    save_every_steps: int = 0  # 0: only at epoch ends
    save_every_epochs: int = 1  # the epoch-end checkpoint every N epochs (and at the last)
    keep_last: int = 3  # step checkpoints kept (the newest N; at least 1)

    def __post_init__(self) -> None:
        super().__post_init__()
        require_at_least(self, "train", 1, "save_every_epochs", "keep_last")
        require_at_least(self, "train", 0, "save_every_steps")


@dataclass
class MonitorConfig:
    """Optional k-NN probe on a labelled PolypDiag-layout folder every ``every_epochs``."""

    data: str | None = None  # labelled PolypDiag-layout folder of the k-NN probe; null: no probe
    every_epochs: int = 1  # run the probe every N epochs
    k: int = 5  # neighbours the k-NN classifier votes with
    num_frames: int = 8  # frames per clip of the probe's features
    frame_step: int = 32  # frames between the probe clips' frames

    def __post_init__(self) -> None:
        require_at_least(self, "monitor", 1, "every_epochs", "k", "num_frames", "frame_step")


@dataclass
class PretrainConfig:
    model: SSLModelConfig = field(default_factory=SSLModelConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    loss: SSLLossConfig = field(default_factory=SSLLossConfig)
    optim: SSLOptimConfig = field(default_factory=SSLOptimConfig)
    ssl: SSLConfig = field(default_factory=SSLConfig)
    views: PretrainViewsConfig = field(default_factory=PretrainViewsConfig)
    data: SSLDataConfig = field(default_factory=SSLDataConfig)
    train: PretrainTrainConfig = field(default_factory=PretrainTrainConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    collapse: CollapseConfig = field(default_factory=CollapseConfig)

    def __post_init__(self) -> None:
        self.model.backbone.bind(self.views.global_size, self.views.num_frames,
                                 "views.global_size/views.num_frames")
