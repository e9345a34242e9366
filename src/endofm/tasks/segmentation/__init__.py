"""CVC-12k video polyp segmentation on the Endo-FM backbone."""

from endofm.tasks.segmentation.metrics import dice, hd95, iou, sequence_metrics
from endofm.tasks.segmentation.model import (
    HybridSegmenter,
    SegmentationModelConfig,
    ViTSegmenter,
    build_segmenter,
)
from endofm.tasks.segmentation.stitching import stitch, window_starts

__all__ = [
    "HybridSegmenter", "SegmentationModelConfig", "ViTSegmenter",
    "build_segmenter", "dice", "hd95", "iou", "sequence_metrics", "stitch", "window_starts",
]
