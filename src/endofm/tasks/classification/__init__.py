"""Video classification (PolypDiag, or your own labelled videos) on the shared downstream
engine."""

from endofm.tasks.registry import TaskSpec, register_task

SPEC = register_task(TaskSpec(
    name="classification",
    kind="classifier",
    task="endofm.tasks.classification.task:ClassificationTask",
    summary="video classification (backbone CLS → linear head)",
    formats=("polypdiag", "manifest", "folders"),
    predictor="endofm.inference.predict:ClassificationPredictor",
    report="endofm.inference.predict_run:ClassificationArtifacts",
    predict_help="per-window class probabilities, timeline.csv/png and a video-level decision "
                 "(max of the smoothed positive-class probability >= --threshold)",
    window_help=("step between a window's frames, in frames or seconds (0.5s); default 32 "
                 "frames at 30 fps, rescaled to the video's rate",
                 "step between window starts (default: adjacent windows)"),
    released_layouts=("polypdiag",),
    sample="endofm.data.synth:sample_polypdiag",
    live="endofm.deploy.live_tasks:classification_live",
))
