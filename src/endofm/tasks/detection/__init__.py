"""Video detection (KUMC, or your own COCO boxes) on the Endo-FM backbone."""

from endofm.tasks.registry import TaskSpec, register_task

SPEC = register_task(TaskSpec(
    name="detection",
    kind="detector",
    task="endofm.tasks.detection.task:DetectionTask",
    summary="video detection (boxes per frame; a torchvision head on the Endo-FM pyramid)",
    formats=("kumc", "coco", "voc"),
    predictor="endofm.inference.predict:DetectionPredictor",
    report="endofm.inference.predict_run:DetectionArtifacts",
    predict_help="per-frame boxes (COCO JSON, the video's pixels), overlay.mp4 and detections "
                 "over time",
    window_help=("step between a clip's frames around the predicted frame (default: the step "
                 "the model was trained with)",
                 "step between predicted frames, one clip each (default 1: every frame)"),
    sample="endofm.data.synth:sample_kumc",
    live="endofm.deploy.live_tasks:detection_live",
))
