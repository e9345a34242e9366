"""The ONNX file's ``metadata_props``: what a runtime needs to use the model without endofm.

Every value is JSON text (``json.loads`` gives the number, list, string or object), so a
reader needs only onnx or onnxruntime (``InferenceSession.get_modelmeta().custom_metadata_map``)
and the standard library.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from endofm import __version__
from endofm.deploy.dependencies import require
from endofm.deploy.graphs import output_names
from endofm.deploy.model import DeployModel

FORMAT_VERSION = 1
INPUT_NAME = "clip"
OUTSIDE_GRAPH = {
    "backbone": "nothing: the embedding is the normalised CLS token",
    "classification": "the decision: argmax of probabilities, or probabilities[positive_class] "
                      ">= threshold",
    "segmentation": "resizing the logits back to the frame and the argmax over classes",
    "detection": "the resize/pad of the frames, anchors, box decoding, score thresholding and "
                 "NMS (torchvision's FCOS/RetinaNet postprocessing)",
}


def build_metadata(deploy: DeployModel, opset: int) -> dict[str, Any]:
    """The metadata of ``deploy``'s exported graph, as plain values."""
    meta = {
        "endofm_format": FORMAT_VERSION, "endofm_version": __version__, "opset": opset,
        "task": deploy.task, "input": INPUT_NAME,
        "input_layout": "float32 [batch, 3 (RGB), num_frames, height, width]",
        "outputs": list(output_names(deploy.task, deploy.head)),
        "num_frames": deploy.num_frames, "height": deploy.height, "width": deploy.width,
        "frame_step": deploy.frame_step, "frame_step_fps": deploy.frame_step_fps,
        "pixel_scale": 1 / 255, "mean": list(deploy.mean), "std": list(deploy.std),
        "preprocess": deploy.preprocess, "class_names": deploy.class_names,
        "threshold": deploy.threshold, "outside_graph": OUTSIDE_GRAPH[deploy.task],
    }
    if deploy.head is not None:
        meta["head"] = deploy.head
    if deploy.settings:
        meta["settings"] = deploy.settings
    return meta | deploy.extra


def metadata_props(meta: dict[str, Any]) -> dict[str, str]:
    """``meta`` as ONNX ``metadata_props`` entries (every value JSON text)."""
    return {key: json.dumps(value) for key, value in meta.items()}


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The endofm metadata of an exported ONNX file, parsed. A file without it (not written by
    ``endofm export``) is a ``ValueError`` naming it."""
    onnx = require("onnx", "reading an ONNX file")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX file not found: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and friends
        raise ValueError(f"{path}: not a readable ONNX file ({exc})") from exc
    return parse_props({p.key: p.value for p in model.metadata_props}, path)


def parse_props(props: dict[str, str], path: str | Path) -> dict[str, Any]:
    """Parsed ``metadata_props`` (``custom_metadata_map`` of onnxruntime); checks the format."""
    if "endofm_format" not in props:
        raise ValueError(f"{path}: no endofm metadata (export the model with `endofm export`)")
    meta = {key: json.loads(value) for key, value in props.items()}
    if meta["endofm_format"] != FORMAT_VERSION:
        raise ValueError(f"{path}: endofm metadata format {meta['endofm_format']}, this endofm "
                         f"reads {FORMAT_VERSION}")
    return meta
