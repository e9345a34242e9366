"""What goes into an exported graph: one module per task mapping a normalised clip batch
``float32 [B, 3, T, H, W]`` to the task's raw outputs, as a tuple of named tensors.

- backbone: ``embedding [B, D]`` (the normalised CLS token) and ``tokens [B, 1 + N*T, D]``
  (every token after the final norm, CLS first, then (h, w, t) order, t fastest).
- classification: ``logits [B, C]`` and ``probabilities [B, C]`` (their softmax; per-class
  sigmoids for a multi-label head).
- segmentation: ``logits [B, C, T, H, W]`` (argmax over C is the mask).
- detection (FCOS, RetinaNet): the dense head outputs over all pyramid levels, concatenated
  level after level: ``cls_logits [B, A, C]``, ``bbox_regression [B, A, 4]`` and, for FCOS,
  ``bbox_ctrness [B, A, 1]``. Anchors, box decoding, score thresholding and NMS stay outside
  the graph (:mod:`endofm.deploy.detection`), as does the detector's resize and padding.
"""

from __future__ import annotations

from torch import Tensor, nn

from endofm.tasks.detection.model import ClipDetector

OUTPUTS = {
    "backbone": ("embedding", "tokens"),
    "classification": ("logits", "probabilities"),
    "segmentation": ("logits",),
}
DENSE_OUTPUTS = {"fcos": ("cls_logits", "bbox_regression", "bbox_ctrness"),
                 "retinanet": ("cls_logits", "bbox_regression")}


class BackboneGraph(nn.Module):
    """``[B, 3, T, H, W]`` → ``(embedding [B, D], tokens [B, 1 + N*T, D])``."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, clip: Tensor) -> tuple[Tensor, Tensor]:
        tokens = self.backbone.forward_features(clip)
        return tokens[:, 0], tokens


class ClassifierGraph(nn.Module):
    """``[B, 3, T, H, W]`` → ``(logits [B, C], probabilities [B, C])``: their softmax, or
    per-class sigmoids for a ``multi_label`` head."""

    def __init__(self, classifier: nn.Module, multi_label: bool = False) -> None:
        super().__init__()
        self.classifier, self.multi_label = classifier, multi_label

    def forward(self, clip: Tensor) -> tuple[Tensor, Tensor]:
        logits = self.classifier(clip)
        return logits, logits.sigmoid() if self.multi_label else logits.softmax(-1)


class SegmenterGraph(nn.Module):
    """``[B, 3, T, H, W]`` → ``(logits [B, C, T, H, W],)``."""

    def __init__(self, segmenter: nn.Module) -> None:
        super().__init__()
        self.segmenter = segmenter

    def forward(self, clip: Tensor) -> tuple[Tensor]:
        return (self.segmenter(clip),)


class DetectorGraph(nn.Module):
    """A normalised, padded clip batch ``[B, 3, T, H, W]`` (what the detector's transform
    makes of the frames) → the dense head outputs (:data:`DENSE_OUTPUTS`)."""

    def __init__(self, detector: ClipDetector, head: str) -> None:
        super().__init__()
        if head not in DENSE_OUTPUTS:
            raise ValueError(f"a {head} detector cannot be exported: its region proposals "
                             "and RoI pooling need NMS inside the graph; export FCOS or "
                             f"RetinaNet models ({sorted(DENSE_OUTPUTS)})")
        self.detector, self.names = detector, DENSE_OUTPUTS[head]

    def forward(self, clip: Tensor) -> tuple[Tensor, ...]:
        b, _, t, h, w = clip.shape
        packed = clip.transpose(1, 2).reshape(b, t * 3, h, w)
        features = list(self.detector.detector.backbone(packed).values())
        outputs = self.detector.detector.head(features)
        return tuple(outputs[name] for name in self.names)


def output_names(task: str, head: str | None = None) -> tuple[str, ...]:
    """The graph's output names for ``task`` (detection: for its ``head``)."""
    return DENSE_OUTPUTS[str(head)] if task == "detection" else OUTPUTS[task]


def graph_module(task: str, model: nn.Module, head: str | None = None,
                 multi_label: bool = False) -> nn.Module:
    """The export module of ``task`` around its eval-mode ``model`` (detection: its
    ``head``; classification: sigmoids for a ``multi_label`` head)."""
    if task == "backbone":
        return BackboneGraph(model).eval()
    if task == "classification":
        return ClassifierGraph(model, multi_label).eval()
    if task == "segmentation":
        return SegmenterGraph(model).eval()
    if task == "detection":
        return DetectorGraph(model, str(head)).eval()
    raise ValueError(f"no export graph for task {task!r}")
