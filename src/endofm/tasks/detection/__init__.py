"""KUMC video polyp detection on the Endo-FM backbone."""

from endofm.tasks.detection.metrics import METRIC_KEYS, FrameDetections, detection_metrics
from endofm.tasks.detection.model import ClipDetector, DetectionModelConfig, build_detector
from endofm.tasks.detection.task import (
    DetectionConfig,
    DetectionDataConfig,
    DetectionEvalConfig,
    DetectionTask,
)

__all__ = ["METRIC_KEYS", "ClipDetector", "DetectionDataConfig", "DetectionEvalConfig",
           "DetectionModelConfig",
           "DetectionConfig", "DetectionTask", "FrameDetections", "build_detector",
           "detection_metrics"]
