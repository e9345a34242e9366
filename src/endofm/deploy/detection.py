"""The parts of a detector that stay outside its exported graph, run with the model's own
torchvision pieces: the transform before the graph (normalise, resize, pad) and, after it, the
anchors, box decoding, score thresholding and NMS (``postprocess_detections``) and the
mapping of boxes back to the frame.

:class:`OnnxDetector` puts them around an ONNX Runtime session so it is called like
:class:`~endofm.tasks.detection.model.ClipDetector` in evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torchvision.models.detection.image_list import ImageList

from endofm.tasks.detection.model import ClipDetector

# raw outputs [B, 3, T, H, W] → (cls_logits [B, A, C], bbox_regression [B, A, 4], ...)
GraphCall = Callable[[Tensor], Sequence[Tensor]]


class DetectionDecoder:
    """Dense head outputs → per-clip ``{"boxes", "scores", "labels"}`` with ``detector``'s
    settings; ``levels`` the pyramid's ``[h, w]`` per level for the graph's input size."""

    def __init__(self, detector: ClipDetector, levels: Sequence[Sequence[int]],
                 names: Sequence[str]) -> None:
        self.detector, self.levels, self.names = detector, [tuple(lv) for lv in levels], names

    def prepare(self, clips: Sequence[Tensor], size: tuple[int, int]
                ) -> tuple[Tensor, ImageList, list[tuple[int, int]]]:
        """Clips ``[3, T, H, W]`` in [0, 1] → the graph input ``[B, 3, T, *size]`` (the
        detector's transform), its image list and the clips' own sizes. Frames the transform
        pads to another size than ``size`` are a ``ValueError`` naming the size to export at."""
        t = self.detector.num_frames
        packed = [c.transpose(0, 1).reshape(3 * t, *c.shape[2:]) for c in clips]
        images, _ = self.detector.detector.transform(packed)
        got = tuple(images.tensors.shape[-2:])
        if got != tuple(size):
            raise ValueError(f"frames of {tuple(clips[0].shape[-2:])} pixels become "
                             f"{got[0]}x{got[1]} after the detector's resize and padding, but "
                             f"the ONNX graph takes {size[0]}x{size[1]}: export it with "
                             f"--size {got[0]}x{got[1]}")
        b = len(clips)
        x = images.tensors.reshape(b, t, 3, *got).transpose(1, 2).contiguous()
        return x, images, [tuple(c.shape[-2:]) for c in clips]

    def decode(self, outputs: Sequence[Tensor], images: ImageList,
               original_sizes: list[tuple[int, int]]) -> list[dict[str, Tensor]]:
        """The graph's outputs for ``images`` → detections in the clips' own pixels."""
        det = self.detector.detector
        head = dict(zip(self.names, outputs, strict=True))
        first = outputs[0]
        features = [first.new_empty(first.shape[0], 0, h, w) for h, w in self.levels]
        anchors = det.anchor_generator(images, features)
        per_level = [h * w for h, w in self.levels]
        per_anchor = first.shape[1] // sum(per_level)  # RetinaNet: several anchors per cell
        sizes = [n * per_anchor for n in per_level]
        split = {k: list(v.split(sizes, dim=1)) for k, v in head.items()}
        split_anchors = [list(a.split(sizes)) for a in anchors]
        found = det.postprocess_detections(split, split_anchors, images.image_sizes)
        found = det.transform.postprocess(found, images.image_sizes, original_sizes)
        shift = self.detector.label_shift
        return [d | {"labels": d["labels"] + shift} for d in found]


class OnnxDetector(nn.Module):
    """``forward(clips: list of [3, T, H, W] in [0, 1])`` → per clip ``{"boxes", "scores",
    "labels"}``, as ``ClipDetector`` in evaluation, with the graph run by ``graph``.

    ``detector`` supplies only the transform and postprocessing (it may be built on the meta
    device: no weights are used); ``size`` is the graph's ``(height, width)``.
    """

    def __init__(self, graph: GraphCall, detector: ClipDetector, levels: Sequence[Sequence[int]],
                 names: Sequence[str], size: tuple[int, int],
                 operating_threshold: float | None = None) -> None:
        super().__init__()
        self.graph, self.size = graph, size
        self.decoder = DetectionDecoder(detector, levels, names)
        self.num_frames = detector.num_frames
        self.operating_threshold = operating_threshold

    def forward(self, clips: Sequence[Tensor]) -> list[dict[str, Tensor]]:
        x, images, sizes = self.decoder.prepare([c.float().cpu() for c in clips], self.size)
        with torch.inference_mode():
            return self.decoder.decode(self.graph(x), images, sizes)
