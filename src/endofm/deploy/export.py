"""``endofm export``: a model to one ONNX file, with its metadata, checked against PyTorch.

The graph is traced by ``torch.onnx.export(..., dynamo=True)`` at opset
:data:`DEFAULT_OPSET` with a dynamic batch dimension (frames and size are fixed at export).
Before the file is written, ONNX Runtime runs it on a random clip and on a real one (frames of
``video`` or a rendered endoscopy scene) and :class:`~endofm.deploy.parity.ParityChecker`
compares it with PyTorch; a mismatch is a :class:`~endofm.deploy.parity.ParityError` and no
file is written.
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
from torch import Tensor

from endofm.data import open_video
from endofm.data.synth_render import random_camera, random_scene, render_frame
from endofm.data.transforms import normalize, short_side_resize, to_clip
from endofm.deploy.dependencies import require
from endofm.deploy.detection import DetectionDecoder
from endofm.deploy.graphs import graph_module, output_names
from endofm.deploy.metadata import INPUT_NAME, build_metadata, metadata_props
from endofm.deploy.model import DeployModel
from endofm.deploy.parity import DEFAULT_TOLERANCE, ParityChecker, ParityResult
from endofm.tasks.segmentation.data import read_input, to_model_input
from endofm.utils.io import atomic_write_bytes

log = logging.getLogger(__name__)

DEFAULT_OPSET = 18
MAX_BATCH = 4096


@dataclass
class ExportReport:
    """What was written: the file, its metadata and the parity of each clip."""

    path: Path
    metadata: dict[str, Any]
    parity: list[ParityResult]
    seconds: float


def rendered_frames(num_frames: int, size: int, seed: int = 0) -> np.ndarray:
    """uint8 ``[T, size, size, 3]``: a rendered colon scene with one polyp, the camera moving."""
    rng = np.random.default_rng(seed)
    scene, camera = random_scene(rng, [1], size), random_camera(rng, num_frames, size)
    return np.stack([render_frame(scene, camera, i, size, size)[0] for i in range(num_frames)])


def video_frames(path: str | Path, deploy: DeployModel) -> np.ndarray:
    """uint8 ``[T, H, W, 3]``: the first window of ``path`` at the model's frame step (counted
    at the video's rate), clamped to the video."""
    source = open_video(path)
    step = deploy.frame_step
    if deploy.frame_step_fps:
        step = max(1, round(step * source.fps / deploy.frame_step_fps))
    indices = np.minimum(np.arange(deploy.num_frames) * step, source.num_frames - 1)
    return source.read(indices.tolist(), short_side=max(deploy.height, deploy.width))


def model_input(deploy: DeployModel, frames: np.ndarray) -> Tensor:
    """uint8 ``[T, H, W, 3]`` → the graph input ``float32 [1, 3, T, height, width]``: scaled so
    both sides cover the input, centre-cropped, normalised as the model expects."""
    clip = to_clip(frames)  # [T, 3, H, W]
    h, w = clip.shape[-2:]
    scale = max(deploy.height / h, deploy.width / w)
    clip = short_side_resize(clip, max(1, round(min(h, w) * scale)))
    top = (clip.shape[-2] - deploy.height) // 2
    left = (clip.shape[-1] - deploy.width) // 2
    clip = clip[..., top:top + deploy.height, left:left + deploy.width]
    if deploy.preprocess.get("normalization") == "release_bgr_minmax":
        return to_model_input(read_input(clip, "release"), "release")[None]
    return normalize(clip, deploy.mean, deploy.std)[None]


def deploy_graph(deploy: DeployModel) -> torch.nn.Module:
    """The module that is exported for ``deploy``."""
    return graph_module(deploy.task, deploy.model, deploy.head,
                        bool(deploy.extra.get("multi_label")))


def export_graph(deploy: DeployModel, opset: int = DEFAULT_OPSET) -> Any:
    """The traced ONNX program of ``deploy`` (batch dimension dynamic)."""
    require("onnxscript", "endofm export")
    require("onnx", "endofm export")
    module = deploy_graph(deploy)
    example = torch.randn(2, 3, deploy.num_frames, deploy.height, deploy.width)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # the exporter's notes on its own internals
        return torch.onnx.export(module, (example,), dynamo=True, dynamic_shapes=({0: batch},),
                                 input_names=[INPUT_NAME],
                                 output_names=list(output_names(deploy.task, deploy.head)),
                                 opset_version=opset, verbose=False)


def parity_checker(deploy: DeployModel, session: Any,
                   tolerance: float = DEFAULT_TOLERANCE) -> ParityChecker:
    """A checker of ``deploy``'s PyTorch graph against an ONNX Runtime ``session``."""
    names = output_names(deploy.task, deploy.head)

    def run(clips: Tensor) -> list[np.ndarray]:
        return session.run(list(names), {INPUT_NAME: clips.numpy()})

    decoder = (DetectionDecoder(deploy.model, deploy.extra["levels"], names)
               if deploy.task == "detection" else None)
    return ParityChecker(deploy.task, deploy_graph(deploy), run, names, tolerance, decoder,
                         deploy.threshold, bool(deploy.extra.get("multi_label")))


@dataclass
class CheckedGraph:
    """An exported graph that met parity, not yet written: its serialised ONNX model, its
    metadata and the parity of each clip."""

    data: bytes
    metadata: dict[str, Any]
    parity: list[ParityResult]


def checked_graph(deploy: DeployModel, opset: int = DEFAULT_OPSET,
                  video: str | Path | None = None, tolerance: float = DEFAULT_TOLERANCE,
                  seed: int = 0) -> CheckedGraph:
    """``deploy``'s graph with its metadata, checked against PyTorch on a random and a real
    clip (arguments as :func:`export_onnx`); a mismatch is a :class:`ParityError`."""
    ort = require("onnxruntime", "endofm export (its parity check)")
    program = export_graph(deploy, opset)
    meta = build_metadata(deploy, opset)
    proto = program.model_proto
    for key, value in metadata_props(meta).items():
        proto.metadata_props.add(key=key, value=value)
    data = proto.SerializeToString()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(seed)
    frames = (video_frames(video, deploy) if video is not None
              else rendered_frames(deploy.num_frames, max(deploy.height, deploy.width), seed))
    clips = {"random": torch.randn(2, 3, deploy.num_frames, deploy.height, deploy.width,
                                   generator=generator),
             "real" if video is not None else "rendered": model_input(deploy, frames)}
    parity = parity_checker(deploy, session, tolerance).check(clips)
    return CheckedGraph(data, meta, parity)


def export_onnx(deploy: DeployModel, output: str | Path, opset: int = DEFAULT_OPSET,
                video: str | Path | None = None, tolerance: float = DEFAULT_TOLERANCE,
                seed: int = 0) -> ExportReport:
    """Export ``deploy`` to ``output`` (written only when parity holds).

    Args:
        deploy: the model and its input conventions (:func:`load_deploy_model`).
        output: the ``.onnx`` file to write (atomically).
        opset: the ONNX opset.
        video: a video whose first window is the real clip of the parity check (default: a
            rendered endoscopy scene).
        tolerance: the largest difference allowed between ONNX Runtime and PyTorch.
        seed: seeds the random clip and the rendered scene.

    Returns:
        The file written, its metadata and the parity of each clip.
    """
    start = time.perf_counter()
    graph = checked_graph(deploy, opset, video, tolerance, seed)
    path = atomic_write_bytes(graph.data, output)
    log.info("exported %s (%s, opset %d)", path, deploy.task, opset)
    return ExportReport(path, graph.metadata, graph.parity, time.perf_counter() - start)
