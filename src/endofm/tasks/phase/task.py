"""The ``phase`` task, stage 2: a temporal model over each whole video's window features.

The features come from stage 1 (``endofm finetune phase`` extracts them with the backbone
before training, into ``features.dir``). One training sample is one whole video; the loss is
the cross-entropy of every stage plus the truncated smoothing term, and a tool-presence
binary cross-entropy where the videos have tool annotations.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from endofm.config import from_dict, to_dict
from endofm.data.phase import CHOLEC80_PHASES
from endofm.models import create_model, save_pretrained
from endofm.models.checkpoint import (
    WEIGHTS_NAME,
    read_state_dir,
    read_state_meta,
    save_state_dir,
)
from endofm.tasks.base import InputKind, ModelInput, Task
from endofm.tasks.phase import SPEC
from endofm.tasks.phase.config import PhaseConfig, PhaseModelConfig
from endofm.tasks.phase.data import FeatureSequences, PhaseItem, PhaseSplits, load_items
from endofm.tasks.phase.evaluation import evaluate_items
from endofm.tasks.phase.model import PhaseTCN, balanced_weights, phase_loss

KIND = SPEC.kind
BACKBONE_DIR = "backbone"  # inside a saved model's folder: the backbone its features came from


class PhaseTask(Task):
    name = "phase"
    config_class = PhaseConfig
    selection_metric = "accuracy"
    test_split = "test"

    def __init__(self, cfg: PhaseConfig) -> None:
        super().__init__(cfg)
        self.class_weights: Tensor | None = None
        self._backbones_saved: set[Path] = set()
        self.splits = PhaseSplits(cfg.data, cfg.protocol.selection)

    # -- data -------------------------------------------------------------------------------
    def read_items(self, root: str | Path, split: str) -> list[PhaseItem]:
        """The videos of ``split`` with their features; ``train`` leaves out the dataset's
        own validation videos when they are the selection set (:meth:`given_split`)."""
        videos = self.splits.videos(root, split)
        if self.cfg.features.dir is None:
            raise ValueError("features.dir is unset: the features are extracted by `endofm "
                             "finetune phase` (stage 1) before the temporal model trains")
        return load_items(videos, self.cfg.features.dir, self.cfg.features.rate,
                          self.cfg.model.tools)

    def given_split(self, root: str | Path, split: str) -> list | None:
        """The dataset's validation videos (Cholec80 33–40, AutoLaparo 11–14) as the
        selection set, or ``None`` (the engine's carve-out)."""
        standard = split == "val" and self.splits.standard_val(root)
        return self.read_items(root, "val") if standard else None

    def train_dataset(self, items: Sequence[PhaseItem]) -> Dataset:
        if self.cfg.loss.class_balanced:
            self.class_weights = balanced_weights([torch.from_numpy(it.labels) for it in items],
                                                  self.num_phases)
        return FeatureSequences(items)

    def collate(self, batch: list) -> list:
        return list(batch)

    # -- model ------------------------------------------------------------------------------
    @property
    def num_phases(self) -> int:
        dataset = self.splits.dataset
        return len(dataset.phases) if dataset is not None else len(CHOLEC80_PHASES)

    def build_model(self, pretrained: str | Path | None) -> nn.Module:
        """The temporal model; ``pretrained`` is stage 1's business (the features)."""
        if self.splits.dataset is None:
            raise RuntimeError("read the items before building the phase model")
        features = np.load(next(Path(self.cfg.features.dir).glob("*.npy")), mmap_mode="r")
        tools = len(self.splits.dataset.tools) if self.cfg.model.tools else 0
        return build_tcn(self.cfg.model, features.shape[1], self.num_phases, tools)

    def loss(self, model: nn.Module, batch: list) -> Tensor:
        """Mean over the batch's videos of :func:`phase_loss` + ``loss.tool_weight`` × BCE."""
        cfg = self.cfg.loss
        total = []
        for features, labels, tools in batch:
            logits, tool_logits = model(features.t().unsqueeze(0))
            weight = None if self.class_weights is None else self.class_weights.to(labels.device)
            loss = phase_loss(logits, labels, cfg.smooth_weight, cfg.smooth_clamp, weight)
            if tool_logits is not None and tools.shape[1]:
                loss = loss + cfg.tool_weight * F.binary_cross_entropy_with_logits(
                    tool_logits[0].t(), tools)
            total.append(loss)
        return torch.stack(total).mean()

    def evaluate(self, model: nn.Module, items: Sequence[PhaseItem], device: torch.device,
                 precision: str, out_dir: Path | None = None) -> dict[str, Any]:
        dataset = self.splits.dataset
        return evaluate_items(model, items, device, dataset.phases, dataset.tools,
                              self.cfg.eval.relaxed, out_dir)

    # -- saving -----------------------------------------------------------------------------
    def save_model(self, model: nn.Module, out_dir: Path) -> Path:
        dataset = self.splits.dataset
        self.save_backbone(Path(out_dir) / BACKBONE_DIR)
        return save_phase_model(getattr(model, "module", model), self.cfg, dataset.phases,
                                dataset.tools, dataset.layout, out_dir)

    def save_backbone(self, target: Path) -> None:
        """The backbone stage 1 extracted with (``features.backbone.pretrained``) into the
        model's folder, so the folder predicts on its own wherever it is copied. Written once
        per folder and task: the backbone does not change while the temporal model trains."""
        if target in self._backbones_saved and (target / WEIGHTS_NAME).is_file():
            return
        source = self.cfg.features.backbone.pretrained
        if not source:
            raise ValueError("features.backbone.pretrained is unset: stage 1 (`endofm finetune "
                             "phase`) records the backbone the features come from")
        save_pretrained(create_model(pretrained=source, random_init=False,
                                     drop_path_rate=0.0), target)
        self._backbones_saved.add(target)

    def load_model(self, path: str | Path) -> nn.Module:
        return load_phase_model(path)[0]

    def saved_config(self, path: str | Path) -> PhaseConfig:
        """The settings the saved temporal model records (:func:`saved_phase_config`)."""
        return saved_phase_config(read_state_meta(path, KIND))

    def model_input(self, model: nn.Module) -> ModelInput:
        """Window features: ``features.num_frames`` frames ``features.step()`` apart at
        ``features.size``, one window each ``1 / features.rate`` s, encoded by the model's
        backbone (:func:`saved_backbone`) into the rows ``[1, D, N]`` the model takes."""
        f = self.cfg.features
        return ModelInput(f.num_frames, f.size, f.step(), InputKind.features)


def build_tcn(cfg: PhaseModelConfig, in_dim: int, num_phases: int, num_tools: int) -> PhaseTCN:
    """The temporal model of ``model`` settings (see :class:`PhaseTCN`)."""
    return PhaseTCN(in_dim, num_phases, cfg.stages, cfg.layers, cfg.channels, cfg.causal,
                    cfg.dropout, num_tools)


def save_phase_model(model: PhaseTCN, cfg: PhaseConfig, phases: Sequence[str],
                     tools: Sequence[str], layout: str, out_dir: str | Path) -> Path:
    """The temporal model's folder: ``model.safetensors`` and ``config.json`` (phases, tools,
    the ``model`` and ``features`` settings, and where its backbone lies in the folder,
    :data:`BACKBONE_DIR`, written by :meth:`PhaseTask.save_backbone`)."""
    meta = {"kind": KIND, "format": "endofm", "in_dim": model.in_dim,
            "num_phases": model.num_phases, "phases": list(phases),
            "tools": list(tools) if model.tools is not None else [],
            "model": to_dict(cfg.model), "features": to_dict(cfg.features),
            "layout": layout, "backbone_dir": BACKBONE_DIR}
    return save_state_dir(model.state_dict(), meta, out_dir)


def saved_backbone(path: str | Path, meta: dict[str, Any]) -> Path:
    """The backbone a saved temporal model's features come from: the copy in its folder
    (``backbone/``); for a model saved without one, the path recorded at training, which must
    still exist."""
    if "backbone_dir" in meta:
        return Path(path) / meta["backbone_dir"]
    recorded = Path(meta["features"]["backbone"]["pretrained"])
    if not recorded.exists():
        raise FileNotFoundError(f"{path}: this phase model holds no backbone/ and the one its "
                                f"features came from is no longer at {recorded}")
    return recorded


def saved_phase_config(meta: dict[str, Any]) -> PhaseConfig:
    """The settings a saved temporal model records (its ``features`` and ``model`` sections,
    its phases as ``data.phases``)."""
    return from_dict(PhaseConfig, {"features": meta["features"], "model": meta["model"],
                                   "data": {"phases": list(meta["phases"])}})


def load_phase_model(path: str | Path) -> tuple[PhaseTCN, dict[str, Any]]:
    """A saved temporal model (eval mode, CPU) and its ``config.json``."""
    meta, tensors = read_state_dir(path, KIND)
    cfg = from_dict(PhaseModelConfig, meta["model"])
    model = build_tcn(cfg, meta["in_dim"], meta["num_phases"], len(meta["tools"]))
    model.load_state_dict(tensors)
    return model.eval(), meta
