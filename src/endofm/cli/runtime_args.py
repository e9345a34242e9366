"""``--runtime torch|onnx`` for the commands that run a model (extract, predict)."""

from __future__ import annotations

import argparse
from typing import Any

RUNTIMES = ("torch", "onnx")


def add_runtime_choice(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runtime", choices=RUNTIMES, default="torch",
                   help="torch (default): the checkpoint on PyTorch; onnx: --checkpoint is a "
                        "file written by `endofm export`, run on ONNX Runtime (--device auto "
                        "uses TensorRT, then CUDA, then the CPU, as installed)")


def onnx_backbone(args: argparse.Namespace) -> Any:
    """The exported backbone of ``--checkpoint`` for ``extract --runtime onnx``; settings it
    cannot honour (another frame count or size, ``--compile``) are refused up front."""
    from endofm.deploy.onnx_task import OnnxBackbone
    from endofm.deploy.runtime import OnnxModel

    backbone = OnnxBackbone(OnnxModel(args.checkpoint, args.device))
    fixed = {"--num-frames": (args.num_frames, backbone.num_frames),
             "--size": (args.size, backbone.img_size)}
    for option, (given, exported) in fixed.items():
        if given is not None and given != exported:
            raise ValueError(f"{args.checkpoint} was exported at {option} {exported}; got "
                             f"{given} (export again at that setting)")
    if args.compile:
        raise ValueError("--compile compiles the PyTorch model; it does not apply to "
                         "--runtime onnx")
    return backbone


def onnx_task_model(args: argparse.Namespace) -> Any:
    """The exported task model of ``--checkpoint`` for ``predict TASK --runtime onnx``."""
    from endofm.deploy.onnx_task import load_onnx_task_model

    task_model, meta = load_onnx_task_model(args.checkpoint, args.device)
    if meta["task"] != args.task:
        raise ValueError(f"{args.checkpoint} is an exported {meta['task']} model, not a "
                         f"{args.task} model")
    return task_model
