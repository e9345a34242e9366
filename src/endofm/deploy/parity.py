"""Parity of an exported graph with the PyTorch model it came from.

Every output must agree to ``tolerance`` (max absolute difference, scaled by the output's
largest magnitude when that exceeds 1), and every decision must be the same: the class
(classification), the per-pixel class (segmentation), the detections scoring at least the
threshold (detection). A decision PyTorch itself takes within ``2 * tolerance`` of a tie is
counted as ambiguous and not compared.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import box_iou

from endofm.deploy.detection import DetectionDecoder

DEFAULT_TOLERANCE = 1e-4
RunGraph = Callable[[Tensor], Sequence[Tensor]]


class ParityError(RuntimeError):
    """The exported graph does not reproduce the PyTorch model."""


@dataclass
class ParityResult:
    """One clip's comparison: the worst difference per output, the decisions compared, the
    ambiguous ones left out and those that differ."""

    clip: str
    max_abs_diff: dict[str, float]
    tolerance: float
    unit: str = "clip"
    decisions: int = 0
    ambiguous: int = 0
    differing: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        diffs = ", ".join(f"{k} {v:.2e}" for k, v in self.max_abs_diff.items())
        return (f"{self.clip} {self.unit}: max |onnx - torch| {diffs} "
                f"(tolerance {self.tolerance:g}); "
                f"{self.decisions - self.differing}/{self.decisions} decisions the same"
                + (f", {self.ambiguous} ties left out" if self.ambiguous else ""))


def top2_margin(scores: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    """``(argmax, top1 - top2)`` of ``scores`` along ``dim``."""
    top = scores.topk(2, dim=dim).values
    return scores.argmax(dim), top.select(dim, 0) - top.select(dim, 1)


def compare_argmax(ref: Tensor, got: Tensor, dim: int, tol: float) -> tuple[int, int, int]:
    """``(compared, ambiguous, differing)`` argmax decisions along ``dim``."""
    ref_class, margin = top2_margin(ref, dim)
    clear = margin > 2 * tol
    differing = int(((ref_class != got.argmax(dim)) & clear).sum())
    return int(clear.sum()), int((~clear).sum()), differing


def compare_sign(ref: Tensor, got: Tensor, tol: float) -> tuple[int, int, int]:
    """``(compared, ambiguous, differing)`` per-class decisions ``logit > 0``."""
    clear = ref.abs() > 2 * tol
    differing = int((((ref > 0) != (got > 0)) & clear).sum())
    return int(clear.sum()), int((~clear).sum()), differing


def compare_detections(ref: list[dict], got: list[dict], threshold: float, tol: float
                       ) -> tuple[int, int, int]:
    """Detections scoring ``>= threshold``: each clear one (score not within ``2 tol`` of the
    threshold) on either side must have a counterpart of the same label at IoU >= 0.99 on the
    other. ``(compared, ambiguous, differing)``, counted on PyTorch's side but differing on
    both."""
    compared = ambiguous = differing = 0
    for r, g in zip(ref, got, strict=True):
        clear, unclear, missing = unmatched(r, g, threshold, tol)
        compared, ambiguous = compared + clear, ambiguous + unclear
        differing += missing + unmatched(g, r, threshold, tol)[2]
    return compared, ambiguous, differing


def unmatched(a: dict, b: dict, threshold: float, tol: float) -> tuple[int, int, int]:
    """``(clear, ambiguous, without counterpart)`` detections of ``a`` against ``b``."""
    near = threshold - 2 * tol
    keep, other = a["scores"] >= near, b["scores"] >= near
    clear = (a["scores"][keep] - threshold).abs() > 2 * tol
    iou = box_iou(a["boxes"][keep], b["boxes"][other])
    same = (iou >= 0.99) & (a["labels"][keep][:, None] == b["labels"][other][None])
    matched = same.any(1) if same.shape[1] else torch.zeros(len(clear), dtype=torch.bool)
    return int(clear.sum()), int((~clear).sum()), int((clear & ~matched).sum())


class ParityChecker:
    """Compares ``module`` (the PyTorch graph) with ``run`` (the exported one) on clips.

    ``decoder`` and ``threshold``: detection's postprocessing and decision threshold;
    ``multi_label``: a classifier deciding per class (logit > 0), not by argmax; ``unit``: what
    one input is called in the report (``clip``, phase's ``sequence`` of window features).
    """

    def __init__(self, task: str, module: nn.Module, run: RunGraph, names: Sequence[str],
                 tolerance: float = DEFAULT_TOLERANCE, decoder: DetectionDecoder | None = None,
                 threshold: float | None = None, multi_label: bool = False,
                 unit: str = "clip") -> None:
        self.task, self.module, self.run, self.names = task, module, run, list(names)
        self.tolerance, self.decoder, self.threshold = tolerance, decoder, threshold
        self.multi_label, self.unit = multi_label, unit

    @torch.inference_mode()
    def compare(self, name: str, clips: Tensor) -> ParityResult:
        """One input batch (clips ``[B, 3, T, H, W]``; phase: features ``[B, T, D]``) through
        both graphs."""
        ref = [o.float() for o in self.module(clips)]
        got = [torch.as_tensor(o).float() for o in self.run(clips)]
        result = ParityResult(name, {}, self.tolerance, self.unit)
        for key, r, g in zip(self.names, ref, got, strict=True):
            diff = float((r - g).abs().max()) if r.numel() else 0.0
            result.max_abs_diff[key] = diff
            scale = max(1.0, float(r.abs().max()) if r.numel() else 1.0)
            if diff > self.tolerance * scale:
                result.failures.append(f"{key} differs by {diff:.3g} (> {self.tolerance:g}"
                                       + (f" x {scale:.3g}" if scale > 1 else "") + ")")
        counts = self.decisions(ref, got, clips)
        result.decisions, result.ambiguous, result.differing = counts
        if result.differing:
            result.failures.append(f"{result.differing} of {result.decisions} decisions differ")
        return result

    def decisions(self, ref: list[Tensor], got: list[Tensor], clips: Tensor
                  ) -> tuple[int, int, int]:
        tol = self.tolerance
        if self.task == "classification" and self.multi_label:
            return compare_sign(ref[0], got[0], tol)
        if self.task == "classification":
            return compare_argmax(ref[0], got[0], 1, tol)
        if self.task == "segmentation":
            return compare_argmax(ref[0], got[0], 1, tol)
        if self.task == "phase":  # the phase of every row (tools: probability >= 0.5)
            counts = [compare_argmax(ref[0], got[0], 2, tol)]
            if len(ref) > 2:
                counts.append(compare_sign(ref[2] - 0.5, got[2] - 0.5, tol))
            return tuple(sum(c) for c in zip(*counts, strict=True))
        if self.task == "detection" and self.decoder is not None:
            b, _, t, h, w = clips.shape
            images = ImageList(clips.transpose(1, 2).reshape(b, 3 * t, h, w), [(h, w)] * b)
            sizes = [(h, w)] * b
            return compare_detections(self.decoder.decode(ref, images, sizes),
                                      self.decoder.decode(got, images, sizes),
                                      0.5 if self.threshold is None else self.threshold,
                                      tol)
        return 0, 0, 0

    def check(self, clips: dict[str, Tensor]) -> list[ParityResult]:
        """Every named clip batch; a :class:`ParityError` listing what differs if any does."""
        results = [self.compare(name, x) for name, x in clips.items()]
        failed = [f"{r.clip} {r.unit}: {failure}" for r in results for failure in r.failures]
        if failed:
            raise ParityError("the exported graph does not match PyTorch:\n"
                              + "\n".join(failed + [r.summary() for r in results]))
        return results
