"""An exported model on ONNX Runtime, called like the PyTorch model it came from.

:class:`OnnxModel` maps a clip batch ``float32 [B, 3, T, H, W]`` (a tensor) to the graph's raw
outputs (tensors, in the order of ``metadata["outputs"]``): the model call the inference
runner makes. Providers: TensorRT and CUDA where onnxruntime has them, then the CPU.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from endofm.deploy.dependencies import require
from endofm.deploy.metadata import INPUT_NAME, parse_props

log = logging.getLogger(__name__)

PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider",
                       "CPUExecutionProvider")
PROVIDER_NAMES = {"tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider",
                  "cpu": "CPUExecutionProvider"}


def choose_providers(available: Sequence[str], device: str = "auto") -> list[str]:
    """The providers to use, fastest first: ``auto`` every preferred one installed; ``cpu``,
    ``cuda`` or ``tensorrt`` that one (then the CPU as fallback). One not installed is a
    ``ValueError`` listing those that are."""
    if device == "auto":
        return [p for p in PREFERRED_PROVIDERS if p in available]
    name = PROVIDER_NAMES.get(device.split(":")[0])
    if name is None:
        raise ValueError(f"ONNX Runtime device {device!r}: use auto, cpu, cuda or tensorrt")
    if name not in available:
        raise ValueError(f"ONNX Runtime has no {name} here (installed: {', '.join(available)}); "
                         "install onnxruntime-gpu for cuda/tensorrt")
    return list(dict.fromkeys([name, "CPUExecutionProvider"]))


class OnnxModel:
    """An ``endofm export`` file in an ONNX Runtime session.

    Args:
        path: the ``.onnx`` file.
        device: ``auto`` (TensorRT, CUDA, CPU: those installed), ``cpu``, ``cuda``,
            ``tensorrt``.
        threads: intra-op threads (default: PyTorch's thread count, so both runtimes get the
            same cores).
    """

    def __init__(self, path: str | Path, device: str = "auto", threads: int | None = None
                 ) -> None:
        ort = require("onnxruntime", f"running {path} on ONNX Runtime")
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"{self.path} is a folder: --runtime onnx takes the .onnx file "
                             "`endofm export --checkpoint FOLDER --output FILE.onnx` writes")
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX file not found: {self.path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        providers = choose_providers(ort.get_available_providers(), device)
        self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        self.providers = self.session.get_providers()
        self.metadata = parse_props(self.session.get_modelmeta().custom_metadata_map, self.path)
        self.output_names = [o.name for o in self.session.get_outputs()]
        log.info("%s on ONNX Runtime (%s)", self.path, ", ".join(self.providers))

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(num_frames, height, width)`` the graph takes."""
        m = self.metadata
        return m["num_frames"], m["height"], m["width"]

    def run(self, clips: np.ndarray) -> list[np.ndarray]:
        """``float32 [B, 3, T, H, W]`` → the graph's outputs (numpy)."""
        shape = tuple(clips.shape[2:])
        if clips.ndim != 5 or shape != self.input_shape:
            t, h, w = self.input_shape
            raise ValueError(f"{self.path} takes clips [B, 3, {t}, {h}, {w}], got "
                             f"{list(clips.shape)}")
        feed = {INPUT_NAME: np.ascontiguousarray(clips, dtype=np.float32)}
        return self.session.run(self.output_names, feed)

    def __call__(self, clips: Tensor) -> tuple[Tensor, ...]:
        """A clip batch ``[B, 3, T, H, W]`` → the raw outputs as float32 CPU tensors."""
        arrays = self.run(clips.detach().float().cpu().numpy())
        return tuple(torch.from_numpy(a) for a in arrays)
