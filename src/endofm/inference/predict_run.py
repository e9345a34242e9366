"""``endofm predict TASK``: a fine-tuned model over whole videos, written as files and pages.

``DIR/<video>/`` (``<video>`` = its path relative to its input root, extension dropped) gets
the task's artefacts and ``report.html``; ``DIR/index.html`` links every video and
``DIR/run.json`` records the checkpoint, settings and errors. Artefacts are written while the
video streams (masks, overlay videos), so memory does not grow with the video's length.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from endofm import __version__
from endofm.data import VideoError, VideoWriter
from endofm.inference.extract import VideoInput, collect_inputs
from endofm.inference.predict import (
    ClassificationPredictor,
    DetectionPredictor,
    Predictor,
    WindowOutput,
    target_frame,
)
from endofm.inference.progress import progress_bar
from endofm.inference.report import (
    TopFrames,
    draw_boxes,
    timeline_plot,
    tint,
    write_index,
    write_report,
)
from endofm.inference.stream import VideoJob
from endofm.utils.io import atomic_write_json, atomic_write_text

CATEGORIES = [{"id": 1, "name": "adenomatous"}, {"id": 2, "name": "hyperplastic"}]


def frame_of(clips, i: int, t: int) -> np.ndarray:
    """uint8 ``[H, W, 3]`` frame ``t`` of window ``i`` of a ``[b, T, 3, H, W]`` batch."""
    return clips[i, t].permute(1, 2, 0).numpy()


class VideoArtifacts:
    """Streams one video's outputs into ``folder``; ``finish`` writes plots and the report."""

    def __init__(self, predictor: Predictor, folder: Path, job: VideoJob, checkpoint: str):
        self.predictor, self.folder, self.job, self.checkpoint = predictor, folder, job, checkpoint
        self.top = TopFrames()
        self.errors: list[str] = []
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, out: WindowOutput) -> None:
        raise NotImplementedError

    def note_errors(self, out: WindowOutput) -> None:
        self.errors += [f"window {w.index} (frames {w.first_frame}-{w.last_frame}): {r}"
                        for w, r in out.errors]

    def finish(self) -> dict[str, object]:
        """Write the plots and ``report.html``; returns the video's ``index.html`` row."""
        summary, images, links = self.outputs()
        keyframes = self.top.save(self.folder / "keyframes")
        if self.errors:
            summary = {**summary, "errors": f"{len(self.errors)} windows failed: "
                                            f"{self.errors[0]}"}
        source = self.job.source
        title = f"{self.job.key}: {self.predictor.task_model.task}"
        settings = {"checkpoint": self.checkpoint, **self.predictor.settings(),
                    "video frames": source.num_frames, "fps": round(source.fps, 3),
                    "frame size": f"{source.height}x{source.width}",
                    "endofm": __version__}
        write_report(self.folder / "report.html", title, summary, images, keyframes, links,
                     settings)
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
                           f"p={p[positive]:.2f}", lambda i=i: frame_of(out.clips, i, t))

    def outputs(self) -> tuple[dict, list, list]:
        pred: ClassificationPredictor = self.predictor
        probs = np.stack(self.probs) if self.probs else np.zeros((0, 2))
        result = pred.summarize(self.windows, probs)
        self.write_csv(probs, result.smoothed)
        times = np.array([(w.start_s + w.end_s) / 2 for w in self.windows])
        timeline_plot(times, {"p(abnormal)": probs[:, result.positive_class],
                              f"smoothed ({pred.smooth} windows)": result.smoothed},
                      "probability", self.folder / "timeline.png", result.threshold,
                      f"{self.job.key}: abnormal probability per window")
        summary = {"decision": "abnormal" if result.abnormal else "normal",
                   "score": round(result.score, 4), "windows": len(self.windows)}
        atomic_write_json(summary | {"threshold": result.threshold}, self.folder /
                          "prediction.json")
        return (summary, [("timeline.png", "Abnormal probability over time")],
                [("timeline.csv", "per-window probabilities (timeline.csv)"),
                 ("prediction.json", "video-level decision (prediction.json)")])

    def write_csv(self, probs: np.ndarray, smoothed: np.ndarray) -> None:
        buf = io.StringIO()
        out = csv.writer(buf, lineterminator="\n")
        out.writerow(["window", "first_frame", "last_frame", "start_s", "end_s", "partial",
                      *[f"prob_{c}" for c in range(probs.shape[1])], "smoothed"])
        for w, p, s in zip(self.windows, probs, smoothed, strict=True):
            row = w.row()
            out.writerow([row["window"], row["first_frame"], row["last_frame"], row["start_s"],
                          row["end_s"], row["partial"], *[f"{v:.6f}" for v in p], f"{s:.6f}"])
        atomic_write_text(buf.getvalue(), self.folder / "timeline.csv")


class OverlayVideo:
    """An MP4 of overlay frames (even-cropped), opened on the first frame."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.fps, self.writer = path, fps, None

    def write(self, frame: np.ndarray) -> None:
        h, w = frame.shape[0] // 2 * 2, frame.shape[1] // 2 * 2
        if self.writer is None:
            self.writer = VideoWriter(self.path, self.fps, h, w)
        self.writer.write(frame[:h, :w])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class SegmentationArtifacts(VideoArtifacts):
    """``masks/<frame>.png`` (0/255), ``overlay.mp4``, ``area.csv`` and ``area.png``."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        step = self.job.plan.step
        self.overlay = OverlayVideo(self.folder / "overlay.mp4", self.job.source.fps / step)
        (self.folder / "masks").mkdir(exist_ok=True)
        self.frames, self.area, self.last = [], [], -1

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
                Image.fromarray(mask * 255).save(self.folder / "masks" / f"{frame:06d}.png")
                image = frame_of(out.clips, i, t)
                overlay = tint(image, mask)
                self.overlay.write(overlay)
                area = float(mask.mean())
                self.frames.append(frame)
                self.area.append(area)
                self.top.offer(area, f"frame {frame}: polyp area {100 * area:.1f}%",
                               lambda o=overlay: o)

    def outputs(self) -> tuple[dict, list, list]:
        self.overlay.close()
        fps = self.job.source.fps
        frames, area = np.array(self.frames), np.array(self.area)
        rows = "".join(f"{f},{f / fps:.6f},{a:.6f}\n" for f, a in zip(frames, area, strict=True))
        atomic_write_text("frame,time_s,polyp_fraction\n" + rows, self.folder / "area.csv")
        timeline_plot(frames / fps, {"polyp area (fraction of frame)": area}, "area",
                      self.folder / "area.png", title=f"{self.job.key}: polyp area over time")
        summary = {"frames": len(frames), "frames with polyp": int((area > 0).sum()),
                   "max area": round(float(area.max()) if len(area) else 0.0, 4)}
        return (summary, [("area.png", "Polyp area over time")],
                [("overlay.mp4", "overlay video (overlay.mp4)"),
                 ("area.csv", "per-frame polyp area (area.csv)"),
                 ("masks/", "per-frame masks (masks/*.png)")])


class DetectionArtifacts(VideoArtifacts):
    """``detections.json`` (COCO: images, predictions as annotations with scores),
    ``overlay.mp4`` and ``detections.png``."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        every = self.job.plan.every
        self.overlay = OverlayVideo(self.folder / "overlay.mp4", self.job.source.fps / every)
        self.images, self.annotations, self.counts, self.best = [], [], [], []
        self.size = None

    def add(self, out: WindowOutput) -> None:
        self.note_errors(out)
        if out.outputs is None:
            return
        pred: DetectionPredictor = self.predictor
        t = out.clips.shape[1] // 2
        for i, (window, det) in enumerate(zip(out.windows, out.outputs, strict=True)):
            frame = target_frame(window)
            image = frame_of(out.clips, i, t)
            self.size = image.shape[:2]
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
        atomic_write_json({"images": self.images, "annotations": self.annotations,
                           "categories": CATEGORIES}, self.folder / "detections.json")
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


ARTIFACTS = {"classification": ClassificationArtifacts,
             "segmentation": SegmentationArtifacts, "detection": DetectionArtifacts}


def run_predict(predictor: Predictor, sources: Sequence[str | Path], output: str | Path,
                checkpoint: str, progress: bool = True) -> dict[str, object]:
    """Predict every video of ``sources`` into ``output``; returns the ``run.json`` content."""
    output = Path(output)
    skipped: list[dict] = []
    inputs = collect_inputs(sources, skipped)
    task = predictor.task_model.task
    errors: list[dict] = []
    opened: list[tuple[VideoInput, VideoJob]] = []
    for v in inputs:
        try:
            opened.append((v, predictor.job(v.path, v.key)))
        except VideoError as exc:
            errors.append({"path": str(v.path), "reason": exc.reason})
    rows: list[dict] = []
    bar = progress_bar(len(inputs), "videos", "video", progress)
    bar.update(len(inputs) - len(opened))
    current: VideoArtifacts | None = None
    for out in predictor.run([job for _, job in opened]):
        v, job = opened[out.job]
        if current is None or current.job is not job:
            current = ARTIFACTS[task](predictor, output / v.stem, job, checkpoint)
        current.add(out)
        if out.last:
            row = current.finish()
            rows.append(row | {"report": f"{v.stem}/report.html"})
            if current.errors:
                errors.append({"path": str(v.path), "reason": current.errors[0],
                               "failed_windows": len(current.errors)})
            bar.set_postfix_str(v.key)
            bar.update()
    bar.close()
    columns = ["video", *[k for k in rows[0] if k not in ("video", "report")]] if rows else []
    write_index(output / "index.html", f"endofm predict {task}", rows, columns)
    run = {"endofm_version": __version__, "task": task, "checkpoint": checkpoint,
           "settings": predictor.settings(), "num_videos": len(inputs), "videos": rows,
           "errors": errors, "skipped": skipped}
    atomic_write_json(json.loads(json.dumps(run, default=str)), output / "run.json")
    return run
