"""A phase model to ONNX: two graphs, the backbone and the temporal model, each with its
metadata, both checked against PyTorch before either is written.

A phase model is two stages: the backbone in its folder (``backbone/``: a window
``[B, 3, T, H, W]`` → its embedding ``[B, D]``, the feature the temporal model was trained on)
and the temporal model (:class:`~endofm.tasks.phase.model.PhaseTCN`: the features of a video's
windows so far ``[B, N, D]`` → per-window phase logits). ``export_phase(checkpoint,
"phase.onnx")`` writes the temporal graph to ``phase.onnx`` (batch and time ``N`` dynamic)
and the backbone's, through the backbone export, beside it (``phase.backbone.onnx``; its
name is in the temporal file's metadata, ``backbone``).

Parity: the backbone on a random and a real clip (as every export); the temporal model on
random features and on a real sequence, the backbone's features of the windows of ``video``
(default: of a rendered endoscopy scene).
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from endofm import __version__
from endofm.config import to_dict
from endofm.deploy.dependencies import require
from endofm.deploy.export import (
    DEFAULT_OPSET,
    MAX_BATCH,
    CheckedGraph,
    checked_graph,
    deploy_graph,
    model_input,
    rendered_frames,
)
from endofm.deploy.metadata import FORMAT_VERSION, metadata_props
from endofm.deploy.model import DeployModel, load_deploy_model
from endofm.deploy.parity import DEFAULT_TOLERANCE, ParityChecker, ParityResult
from endofm.deploy.runtime import OnnxModel
from endofm.inference.phase import phase_encoder
from endofm.tasks.phase.config import PhaseConfig
from endofm.tasks.phase.model import PhaseTCN
from endofm.tasks.phase.task import load_phase_model, saved_backbone, saved_phase_config
from endofm.utils.io import atomic_write_bytes

log = logging.getLogger(__name__)

FEATURES_INPUT = "features"
BACKBONE_SUFFIX = ".backbone.onnx"
MAX_ROWS = 1 << 20  # windows in one sequence (11.6 days at one window per second)
RENDERED_ROWS = 12  # windows of the rendered scene when no video is given
OUTSIDE_GRAPH = ("the features: the backbone graph (metadata 'backbone') on each window, its "
                 "'embedding' output one row per window in time order; the decision: argmax "
                 "of probabilities per row (tools: tool_probabilities >= 0.5)")


class PhaseGraph(nn.Module):
    """``features [B, N, D]`` → ``(logits [B, N, P], probabilities [B, N, P])`` of the last
    stage, and ``tool_probabilities [B, N, K]`` when the model has the tool head."""

    def __init__(self, model: PhaseTCN) -> None:
        super().__init__()
        self.model = model.eval()

    def forward(self, features: Tensor) -> tuple[Tensor, ...]:
        stages, tools = self.model(features.transpose(1, 2))
        logits = stages[-1].transpose(1, 2)
        outputs = (logits, logits.softmax(-1))
        if tools is not None:
            outputs += (tools.sigmoid().transpose(1, 2),)
        return outputs


def phase_outputs(model: PhaseTCN) -> tuple[str, ...]:
    """The temporal graph's output names."""
    tools = ("tool_probabilities",) if model.tools is not None else ()
    return ("logits", "probabilities", *tools)


def backbone_file(output: str | Path) -> Path:
    """Where the backbone of the phase export ``output`` goes: ``phase.onnx`` →
    ``phase.backbone.onnx``."""
    output = Path(output)
    return output.with_name(output.stem + BACKBONE_SUFFIX)


@dataclass
class PhaseExportReport:
    """What was written: the temporal model's file and the backbone's, the metadata of each
    and their parity (the backbone's clips, the temporal model's sequences)."""

    path: Path
    backbone_path: Path
    metadata: dict[str, Any]
    backbone_metadata: dict[str, Any]
    parity: list[ParityResult]
    backbone_parity: list[ParityResult]
    seconds: float


def feature_step(cfg: PhaseConfig) -> tuple[int, float | None]:
    """The windows' frame step as the backbone's metadata states it: ``(frames, None)``, or
    one frame at ``1 / seconds`` frames per second for a step in seconds."""
    step = cfg.features.step()
    if step.endswith("s"):
        return 1, 1.0 / float(step[:-1])
    return int(step), None


def backbone_deploy(checkpoint: Path, meta: dict[str, Any], cfg: PhaseConfig) -> DeployModel:
    """The phase model's backbone at the windows its features were made of."""
    f = cfg.features
    deploy = load_deploy_model(saved_backbone(checkpoint, meta), f.num_frames, f.size)
    deploy.frame_step, deploy.frame_step_fps = feature_step(cfg)
    return deploy


def phase_metadata(meta: dict[str, Any], model: PhaseTCN, cfg: PhaseConfig, opset: int,
                   backbone_name: str) -> dict[str, Any]:
    """The temporal graph's metadata (every value JSON-ready)."""
    f = cfg.features
    return {
        "endofm_format": FORMAT_VERSION, "endofm_version": __version__, "opset": opset,
        "task": "phase", "input": FEATURES_INPUT,
        "input_layout": "float32 [batch, windows, in_dim]: the backbone's embedding of each "
                        "window, in time order",
        "outputs": list(phase_outputs(model)), "class_names": list(meta["phases"]),
        "phases": list(meta["phases"]), "tools": list(meta["tools"]),
        "in_dim": model.in_dim, "causal": model.causal,
        "receptive_rows": model.receptive_rows, "rate": f.rate, "num_frames": f.num_frames,
        "frame_step": f.step(), "stride": f.stride(), "size": f.size,
        "backbone": backbone_name, "outside_graph": OUTSIDE_GRAPH,
        "settings": {"phases": list(meta["phases"]), "tools": list(meta["tools"]),
                     "model": meta["model"], "features": to_dict(f),
                     "layout": meta.get("layout", "")},
    }


def export_temporal(model: PhaseTCN, opset: int) -> Any:
    """The traced ONNX program of the temporal model (batch and windows dynamic)."""
    require("onnxscript", "endofm export")
    require("onnx", "endofm export")
    example = torch.randn(2, 16, model.in_dim)
    dims = {0: torch.export.Dim("batch", min=1, max=MAX_BATCH),
            1: torch.export.Dim("windows", min=1, max=MAX_ROWS)}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # the exporter's notes on its own internals
        return torch.onnx.export(PhaseGraph(model), (example,), dynamo=True,
                                 dynamic_shapes=(dims,), input_names=[FEATURES_INPUT],
                                 output_names=list(phase_outputs(model)),
                                 opset_version=opset, verbose=False)


@torch.inference_mode()
def rendered_sequence(deploy: DeployModel, rows: int, seed: int) -> Tensor:
    """``[rows, D]``: the backbone's features of consecutive windows of a rendered scene."""
    t = deploy.num_frames
    frames = rendered_frames(rows + t - 1, max(deploy.height, deploy.width), seed)
    clips = torch.cat([model_input(deploy, frames[k:k + t]) for k in range(rows)])
    return deploy_graph(deploy)(clips)[0]


def real_sequence(saved: dict[str, Any], backbone: Path, video: str | Path) -> Tensor:
    """``[windows, D]``: the features of every window of ``video``, extracted as the model's
    training did (``saved``: its ``config.json``), on the CPU in fp32."""
    cfg = saved_phase_config(saved)
    cfg.train.device, cfg.train.precision = "cpu", "fp32"
    features, _ = phase_encoder(cfg, backbone).encode(video)
    return torch.from_numpy(np.ascontiguousarray(features, np.float32))


def checked_temporal(model: PhaseTCN, meta: dict[str, Any], sequence: tuple[str, Tensor],
                     opset: int, tolerance: float, seed: int) -> CheckedGraph:
    """The temporal graph with ``meta``, checked on random features and on ``sequence``
    (``(name, [N, D])``)."""
    ort = require("onnxruntime", "endofm export (its parity check)")
    proto = export_temporal(model, opset).model_proto
    for key, value in metadata_props(meta).items():
        proto.metadata_props.add(key=key, value=value)
    data = proto.SerializeToString()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = phase_outputs(model)

    def run(features: Tensor) -> list[np.ndarray]:
        return session.run(list(names), {FEATURES_INPUT: features.numpy()})

    generator = torch.Generator().manual_seed(seed)
    inputs = {"random": torch.randn(2, 37, model.in_dim, generator=generator),
              sequence[0]: sequence[1][None]}
    checker = ParityChecker("phase", PhaseGraph(model), run, names, tolerance,
                            unit="sequence")
    return CheckedGraph(data, meta, checker.check(inputs))


def export_phase(checkpoint: str | Path, output: str | Path, opset: int = DEFAULT_OPSET,
                 video: str | Path | None = None, tolerance: float = DEFAULT_TOLERANCE,
                 seed: int = 0) -> PhaseExportReport:
    """Export a phase model's temporal graph to ``output`` and its backbone's beside it
    (:func:`backbone_file`); neither is written unless both meet parity.

    Args:
        checkpoint: the phase model's folder (``RUN/best``).
        output: the temporal model's ``.onnx`` file.
        opset: the ONNX opset.
        video: a short video: its first window is the backbone's real clip and the features
            of all its windows the temporal model's real sequence (default: a rendered
            endoscopy scene).
        tolerance: the largest difference allowed between ONNX Runtime and PyTorch.
        seed: seeds the random inputs and the rendered scene.

    Returns:
        Both files, their metadata and parity.
    """
    start = time.perf_counter()
    checkpoint, output = Path(checkpoint), Path(output)
    model, saved = load_phase_model(checkpoint)
    cfg = saved_phase_config(saved)
    deploy = backbone_deploy(checkpoint, saved, cfg)
    backbone = checked_graph(deploy, opset, video, tolerance, seed)
    sequence = (("real", real_sequence(saved, saved_backbone(checkpoint, saved), video))
                if video is not None
                else ("rendered", rendered_sequence(deploy, RENDERED_ROWS, seed)))
    side = backbone_file(output)
    meta = phase_metadata(saved, model, cfg, opset, side.name)
    temporal = checked_temporal(model, meta, sequence, opset, tolerance, seed)
    backbone_path = atomic_write_bytes(backbone.data, side)
    path = atomic_write_bytes(temporal.data, output)
    log.info("exported %s and %s (phase, opset %d)", path, backbone_path, opset)
    return PhaseExportReport(path, backbone_path, meta, backbone.metadata, temporal.parity,
                             backbone.parity, time.perf_counter() - start)


class OnnxPhaseModel(nn.Module):
    """An exported temporal graph where :class:`~endofm.inference.phase_predict.PhaseStream`
    uses a :class:`PhaseTCN`: ``causal``, ``receptive_rows`` and ``probabilities``; the
    backbone file beside it is :meth:`backbone`."""

    def __init__(self, session: OnnxModel, device: str = "auto") -> None:
        super().__init__()
        meta = session.metadata
        self.session, self.device_name, self.metadata = session, device, meta
        self.causal, self.receptive_rows = bool(meta["causal"]), int(meta["receptive_rows"])
        self.names = list(meta["outputs"])

    @property
    def settings(self) -> dict[str, Any]:
        """The phase model's ``config.json`` sections the export recorded."""
        return self.metadata["settings"]

    def backbone(self) -> nn.Module:
        """The backbone graph beside the temporal one, as a backbone module."""
        from endofm.deploy.onnx_task import OnnxBackbone

        return OnnxBackbone(OnnxModel(self.session.path.parent / self.metadata["backbone"],
                                      self.device_name))

    @torch.no_grad()
    def probabilities(self, features: Tensor) -> tuple[Tensor, Tensor | None]:
        """One video's features ``[N, D]`` → (phase probabilities ``[N, P]``, tool
        probabilities ``[N, K]`` or ``None``), as :meth:`PhaseTCN.probabilities`."""
        feed = {FEATURES_INPUT: features.detach().float().cpu().numpy()[None]}
        outputs = dict(zip(self.names, self.session.session.run(self.names, feed),
                           strict=True))
        tools = outputs.get("tool_probabilities")
        return (torch.from_numpy(outputs["probabilities"][0]),
                None if tools is None else torch.from_numpy(tools[0]))
