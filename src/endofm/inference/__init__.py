"""Running Endo-FM on your own videos: sliding-window features (``VideoEncoder``,
``endofm extract``), whole-video predictions of fine-tuned models, attention maps and reports."""

from endofm.inference.backbone import FEATURES, FeatureExtractor, load_backbone
from endofm.inference.encoder import VideoEncoder
from endofm.inference.predict import (
    ClassificationPrediction,
    DetectionPrediction,
    SegmentationPrediction,
    predict_video,
)
from endofm.inference.task_models import TaskModel, load_task_model
from endofm.inference.windows import Window, WindowPlan, WindowSpec

__all__ = ["FEATURES", "ClassificationPrediction", "DetectionPrediction", "FeatureExtractor",
           "SegmentationPrediction", "TaskModel", "VideoEncoder", "Window", "WindowPlan",
           "WindowSpec", "load_backbone", "load_task_model", "predict_video"]
