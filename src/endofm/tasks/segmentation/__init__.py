"""Video segmentation (CVC-12k, or your own frames and masks) on the Endo-FM backbone."""

from endofm.tasks.registry import TaskSpec, register_task

SPEC = register_task(TaskSpec(
    name="segmentation",
    kind="segmenter",
    task="endofm.tasks.segmentation.task:SegmentationTask",
    summary="video segmentation (per-frame masks; CE + Dice)",
    formats=("cvc", "image_masks", "coco"),
    predictor="endofm.inference.predict:SegmentationPredictor",
    report="endofm.inference.predict_run:SegmentationArtifacts",
    predict_help="per-frame masks (PNG, the video's size), overlay.mp4 and each class's area "
                 "over time",
    window_help=("step between a window's frames, i.e. between predicted frames (default 1)",
                 "step between window starts (default: adjacent windows)"),
    sample="endofm.data.synth:sample_cvc",
    live="endofm.deploy.live_tasks:segmentation_live",
))
