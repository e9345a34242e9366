"""``endofm predict TASK``: a fine-tuned model over whole videos, written as files and pages.

``DIR/<video>/`` (``<video>`` = its path relative to its input root, extension dropped) gets
the task's artefacts and ``report.html``; ``DIR/index.html`` links every video and
``DIR/run.json`` records the checkpoint, the settings, each video's resolved windows and sizes,
and the errors; the folder is guarded by :class:`endofm.inference.run_folder.RunFolder` (a
re-run skips finished videos, runs failed ones again, refuses other settings). Artefacts are
written while the video streams (masks, overlay videos), so memory does not grow with the
video's length. Masks, boxes and overlays are in the video's own pixels; every label is one of
the model's class names.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from endofm.inference.extract import window_error
from endofm.inference.pages import OverlayVideo, report_settings, run_videos
from endofm.inference.predict import ClassificationPredictor, DetectionPredictor, Predictor
from endofm.inference.report import (
    TopFrames,
    draw_boxes,
    timeline_plot,
    tint,
    write_report,
)
from endofm.inference.run_folder import RunFolder
from endofm.runner import VideoJob, WindowOutput, target_frame
from endofm.tasks.registry import get_task, load_object
from endofm.utils.io import atomic_write_json, atomic_write_text


def frame_of(clips, i: int, t: int) -> np.ndarray:
    """uint8 ``[H, W, 3]`` frame ``t`` of window ``i`` of a ``[b, T, 3, H, W]`` batch."""
    return clips[i, t].permute(1, 2, 0).numpy()


class VideoArtifacts:
    """Streams one video's outputs into ``folder``; ``finish`` writes plots and the report."""

    def __init__(self, predictor: Predictor, folder: Path, job: VideoJob, checkpoint: str):
        self.predictor, self.folder, self.job, self.checkpoint = predictor, folder, job, checkpoint
        self.names = predictor.class_names
        self.top = TopFrames()
        self.errors: list[str] = []
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, out: WindowOutput) -> None:
        raise NotImplementedError

    def note_errors(self, out: WindowOutput) -> None:
        self.errors += [window_error(w, r, len(self.job.plan)) for w, r in out.errors]

    def finish(self) -> dict[str, object]:
        """Write the plots and ``report.html``; returns the video's ``index.html`` row."""
        summary, images, links = self.outputs()
        keyframes = self.top.save(self.folder / "keyframes")
        if self.errors:
            summary = {**summary, "errors": f"{len(self.errors)} windows failed: "
                                            f"{self.errors[0]}"}
        title = f"{self.job.key}: {self.predictor.task_model.task}"
        write_report(self.folder / "report.html", title, summary, images, keyframes, links,
                     report_settings(self.checkpoint, self.predictor, self.job))
        return {"video": self.job.key, **summary}

    def outputs(self) -> tuple[dict, list[tuple[str, str]], list[tuple[str, str]]]:
        raise NotImplementedError


class ClassificationArtifacts(VideoArtifacts):
    """``timeline.csv`` (per-window probabilities), ``timeline.png`` and the decision."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.windows, self.probs = [], []

    def add(self, out: WindowOutput) -> None:
        self.note_errors(out)
        if out.outputs is None:
            return
        positive = self.predictor.positive
        t = out.clips.shape[1] // 2
        for i, (window, p) in enumerate(zip(out.windows, out.outputs, strict=True)):
            self.windows.append(window)
            self.probs.append(p)
            self.top.offer(float(p[positive]), f"{window.start_s:.1f}-{window.end_s:.1f} s: "
                           f"p({self.names[positive]})={p[positive]:.2f}",
                           lambda i=i: frame_of(out.clips, i, t))

    def outputs(self) -> tuple[dict, list, list]:
        pred: ClassificationPredictor = self.predictor
        probs = np.stack(self.probs) if self.probs else np.zeros((0, len(self.names)))
        result = pred.summarize(self.windows, probs)
        self.write_csv(probs, result.smoothed)
        times = np.array([(w.start_s + w.end_s) / 2 for w in self.windows])
        positive = self.names[result.positive_class]
        timeline_plot(times, {f"p({positive})": probs[:, result.positive_class],
                              f"smoothed ({pred.smooth} windows)": result.smoothed},
                      "probability", self.folder / "timeline.png", result.threshold,
                      f"{self.job.key}: {positive} probability per window")
        summary = {"decision": positive if result.abnormal else self.other(result),
                   "score": round(result.score, 4), "windows": len(self.windows)}
        atomic_write_json(summary | {"threshold": result.threshold,
                                     "positive_class": positive}, self.folder /
                          "prediction.json")
        return (summary, [("timeline.png", f"{positive} probability over time")],
                [("timeline.csv", "per-window probabilities (timeline.csv)"),
                 ("prediction.json", "video-level decision (prediction.json)")])

    def other(self, result) -> str:
        """The decision below the threshold: the other class of two, else "not <positive>"."""
        rest = [n for i, n in enumerate(self.names) if i != result.positive_class]
        return rest[0] if len(rest) == 1 else f"not {self.names[result.positive_class]}"

    def write_csv(self, probs: np.ndarray, smoothed: np.ndarray) -> None:
        buf = io.StringIO()
        out = csv.writer(buf, lineterminator="\n")
        out.writerow(["window", "first_frame", "last_frame", "start_s", "end_s", "partial",
                      *[f"prob_{name}" for name in self.names], "smoothed"])
        for w, p, s in zip(self.windows, probs, smoothed, strict=True):
            row = w.row()
            out.writerow([row["window"], row["first_frame"], row["last_frame"], row["start_s"],
                          row["end_s"], row["partial"], *[f"{v:.6f}" for v in p], f"{s:.6f}"])
        atomic_write_text(buf.getvalue(), self.folder / "timeline.csv")


class SegmentationArtifacts(VideoArtifacts):
    """``masks/<frame>.png`` (the video's size; 0 background, 255 the class of a two-class
    model, else class ``c`` as ``c * (255 // (C - 1))``), ``overlay.mp4``, ``area.csv`` (the
    fraction of each frame per class) and ``area.png``."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        step = self.job.plan.step
        self.overlay = OverlayVideo(self.folder / "overlay.mp4", self.job.source.fps / step)
        (self.folder / "masks").mkdir(exist_ok=True)
        self.frames, self.area, self.last = [], [], -1
        self.classes = self.predictor.foreground()
        self.foreground = [self.names[c] for c in self.classes]
        self.grey = 255 // max(1, len(self.names) - 1)

    def add(self, out: WindowOutput) -> None:
        self.note_errors(out)
        if out.outputs is None:
            return
        for i, window in enumerate(out.windows):
            for t, frame in enumerate(window.frames.tolist()):
                if frame <= self.last:  # clamped repeats of the last frame
                    continue
                self.last = frame
                mask = out.outputs[i, t]
                Image.fromarray(mask * self.grey).save(self.folder / "masks" /
                                                       f"{frame:06d}.png")
                overlay = tint(frame_of(out.clips, i, t), mask != self.predictor.background)
                self.overlay.write(overlay)
                area = [float((mask == c).mean()) for c in self.classes]
                self.frames.append(frame)
                self.area.append(area)
                self.top.offer(sum(area), f"frame {frame}: {self.foreground_text(area)}",
                               lambda o=overlay: o)

    def foreground_text(self, area: list[float]) -> str:
        return ", ".join(f"{name} {100 * a:.1f}%" for name, a in zip(self.foreground, area,
                                                                      strict=True))

    def outputs(self) -> tuple[dict, list, list]:
        self.overlay.close()
        fps = self.job.source.fps
        frames = np.array(self.frames)
        area = np.array(self.area).reshape(len(frames), len(self.foreground))
        header = ",".join(["frame", "time_s", *[f"{n}_fraction" for n in self.foreground]])
        rows = "".join(f"{f},{f / fps:.6f}," + ",".join(f"{v:.6f}" for v in a) + "\n"
                       for f, a in zip(frames, area, strict=True))
        atomic_write_text(header + "\n" + rows, self.folder / "area.csv")
        timeline_plot(frames / fps, {f"{n} (fraction of frame)": area[:, c]
                                     for c, n in enumerate(self.foreground)}, "area",
                      self.folder / "area.png", title=f"{self.job.key}: area over time")
        summary: dict[str, object] = {"frames": len(frames)}
        for c, name in enumerate(self.foreground):
            summary[f"frames with {name}"] = int((area[:, c] > 0).sum())
            summary[f"max {name} area"] = round(float(area[:, c].max()) if len(area) else 0.0, 4)
        return (summary, [("area.png", "Area over time")],
                [("overlay.mp4", "overlay video (overlay.mp4)"),
                 ("area.csv", "per-frame area of each class (area.csv)"),
                 ("masks/", "per-frame masks (masks/*.png)")])


class DetectionArtifacts(VideoArtifacts):
    """``detections.json`` (COCO: images, predictions as annotations with scores, the model's
    class names as categories), ``overlay.mp4`` and ``detections.png``; boxes in the video's
    pixels."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        stride = self.job.plan.stride
        self.overlay = OverlayVideo(self.folder / "overlay.mp4", self.job.source.fps / stride)
        self.images, self.annotations, self.counts, self.best = [], [], [], []

    def add(self, out: WindowOutput) -> None:
        self.note_errors(out)
        if out.outputs is None:
            return
        pred: DetectionPredictor = self.predictor
        t = out.clips.shape[1] // 2
        for i, (window, det) in enumerate(zip(out.windows, out.outputs, strict=True)):
            frame = target_frame(window)
            image = frame_of(out.clips, i, t)
            self.images.append({"id": frame, "file_name": f"frame_{frame:06d}",
                                "height": image.shape[0], "width": image.shape[1],
                                "time_s": round(frame / self.job.source.fps, 6)})
            for box, score, label in zip(det["boxes"], det["scores"], det["labels"],
                                         strict=True):
                x0, y0, x1, y1 = (float(v) for v in box)
                self.annotations.append({"id": len(self.annotations) + 1, "image_id": frame,
                                         "category_id": int(label),
                                         "bbox": [x0, y0, x1 - x0, y1 - y0],
                                         "score": float(score)})
            drawn = draw_boxes(image, det["boxes"], det["scores"], det["labels"], pred.threshold)
            self.overlay.write(drawn)
            best = float(det["scores"].max()) if len(det["scores"]) else 0.0
            self.counts.append(int((det["scores"] >= pred.threshold).sum()))
            self.best.append(best)
            self.top.offer(best, f"frame {frame}: best score {best:.2f}", lambda d=drawn: d)

    def outputs(self) -> tuple[dict, list, list]:
        self.overlay.close()
        pred: DetectionPredictor = self.predictor
        categories = [{"id": i, "name": n} for i, n in enumerate(self.names, start=1)]
        atomic_write_json({"images": self.images, "annotations": self.annotations,
                           "categories": categories}, self.folder / "detections.json")
        times = np.array([im["time_s"] for im in self.images])
        timeline_plot(times, {f"detections >= {pred.threshold:g}": np.array(self.counts),
                              "best score": np.array(self.best)}, "count / score",
                      self.folder / "detections.png", pred.threshold,
                      f"{self.job.key}: detections over time")
        summary = {"frames": len(self.images),
                   "frames with detections": int(sum(c > 0 for c in self.counts)),
                   "detections": int(sum(self.counts))}
        return (summary, [("detections.png", "Detections over time")],
                [("overlay.mp4", "overlay video (overlay.mp4)"),
                 ("detections.json", "per-frame boxes, COCO style (detections.json)")])


def run_predict(predictor: Predictor, sources: Sequence[str | Path], output: str | Path,
                checkpoint: str, progress_enabled: bool = True) -> dict[str, object]:
    """Predict every video of ``sources`` into ``output``; returns the ``run.json`` content."""
    task = predictor.task_model.task
    artifacts = load_object(get_task(task).report)  # the task's registered report sections
    folder = RunFolder(output, f"predict {task}", {"checkpoint": checkpoint,
                                                   **predictor.settings()},
                       predictor.runner.runtime(), weights=[checkpoint])
    return run_videos(predictor, folder, sources,
                      lambda path, job: artifacts(predictor, path, job, checkpoint),
                      checkpoint, f"endofm predict {task}", progress_enabled, task=task)
