"""What the model looks at: last-block CLS → patch spatial attention, per frame (DINO style).

For each frame the CLS query's attention over that frame's patches is taken from the last
block's spatial attention, per head and averaged over heads. The CLS → CLS weight is dropped and
each map renormalised, so every map sums to 1 over the patches.

``endofm attention`` writes, per video ``DIR/<video>/``: ``attention.npy`` (float16
``[windows, T, heads, h, w]``), ``sheets/window_<k>.png`` (rows: frames, mean-over-heads overlay,
each head), ``attention.mp4`` (every window's frames with the mean map overlaid) and
``report.html``; ``DIR/index.html`` links every video and ``DIR/run.json`` records the run (the
same folder guard as ``extract`` and ``predict``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from endofm.inference.encoder import BackboneWindows
from endofm.inference.extract import FeatureWriter, window_error
from endofm.inference.pages import OverlayVideo, report_settings, run_videos
from endofm.inference.report import TopFrames, write_report
from endofm.inference.run_folder import RunFolder
from endofm.runner import VideoJob, WindowOutput
from endofm.utils.io import atomic_write

matplotlib.use("Agg")
from matplotlib import colormaps  # noqa: E402
from PIL import Image  # noqa: E402

TILE = 112


def cls_patch_attention(model, clips: Tensor) -> Tensor:
    """``[B, 3, T, H, W]`` → CLS → patch attention ``[B, T, heads, h, w]``, each map summing
    to 1 over the frame's patches (divided space-time or space-only backbones)."""
    if model.attention_type == "joint_space_time":
        raise ValueError("per-frame attention maps need divided space-time or space-only "
                         "attention; this backbone uses joint space-time attention")
    attn = model.get_last_selfattention(clips)  # [B, T, heads, 1+N, 1+N]
    cls = attn[..., 0, 1:].float()
    cls = cls / cls.sum(-1, keepdim=True)
    p = model.patch_size
    h, w = clips.shape[-2] // p, clips.shape[-1] // p
    return cls.reshape(*cls.shape[:3], h, w)


def heat_overlay(frame: np.ndarray, amap: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """uint8 ``[H, W, 3]`` frame blended with map ``[h, w]`` (scaled to its max, up-sampled
    bilinearly, ``inferno`` colours)."""
    t = torch.from_numpy(amap / max(float(amap.max()), 1e-12)).float()[None, None]
    up = F.interpolate(t, size=frame.shape[:2], mode="bilinear", align_corners=False)[0, 0]
    colours = colormaps["inferno"](up.clamp(0, 1).numpy())[..., :3] * 255
    return ((1 - alpha) * frame + alpha * colours).round().clip(0, 255).astype(np.uint8)


def window_sheet(frames: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """uint8 sheet: columns = frames; rows = the frame, the mean-over-heads overlay, then one
    row per head. ``frames`` uint8 ``[T, H, W, 3]``, ``maps`` ``[T, heads, h, w]``."""
    tiles = []
    for frame, fmaps in zip(frames, maps, strict=True):
        small = np.asarray(Image.fromarray(frame).resize((TILE, TILE)))
        column = [small, heat_overlay(small, fmaps.mean(0))]
        column += [heat_overlay(small, head, alpha=0.8) for head in fmaps]
        tiles.append(np.concatenate(column, axis=0))
    return np.concatenate(tiles, axis=1)


class AttentionMaps(BackboneWindows):
    """Per-frame CLS → patch attention of a backbone over windows of videos (the options of
    :class:`BackboneWindows`)."""

    def model_fn(self, x: Tensor) -> Tensor:
        """The model call: ``[B, 3, T, H, W]`` → maps ``[B, T, heads, h, w]``."""
        return cls_patch_attention(self.backbone, x)


class AttentionVideo:
    """Streams one video's maps into ``folder``: ``attention.npy``, the sheets, the MP4; its
    ``report.html`` on :meth:`finish`."""

    def __init__(self, model: AttentionMaps, folder: Path, job: VideoJob, checkpoint: str):
        self.model, self.folder, self.job, self.checkpoint = model, folder, job, checkpoint
        folder.mkdir(parents=True, exist_ok=True)
        self.movie = OverlayVideo(folder / "attention.mp4", job.source.fps / job.plan.step)
        self.writer: FeatureWriter | None = None
        self.errors: list[str] = []
        self.top = TopFrames()

    def add(self, out: WindowOutput) -> None:
        self.errors += [window_error(w, r, len(self.job.plan)) for w, r in out.errors]
        if out.outputs is None:
            return
        maps = out.outputs
        if self.writer is None:
            self.writer = FeatureWriter(self.folder / "attention.npy", len(self.job.plan),
                                        maps.shape[1:], "float16")
        self.writer.write(maps)
        for window, clip, wmaps in zip(out.windows, out.clips, maps, strict=True):
            frames = clip.permute(0, 2, 3, 1).numpy()
            sheet = window_sheet(frames, wmaps)
            atomic_write(self.folder / "sheets" / f"window_{window.index:05d}.png",
                         lambda tmp, s=sheet: Image.fromarray(s).save(tmp, "PNG"))
            for frame, fmaps in zip(frames, wmaps, strict=True):
                self.movie.write(heat_overlay(frame, fmaps.mean(0)))
            peak = float(wmaps.mean(1).max())  # the most focused frame's peak, over heads
            middle = len(frames) // 2
            self.top.offer(peak, f"window {window.index} ({window.start_s:.1f}-"
                           f"{window.end_s:.1f} s): peak {peak:.3f}",
                           lambda f=frames[middle], m=wmaps[middle]: heat_overlay(f, m.mean(0)))

    def finish(self) -> dict[str, object]:
        """Close the files and write ``report.html``; returns the video's ``index.html`` row."""
        self.movie.close()
        if self.writer is not None:
            self.writer.close()
        windows = len(self.job.plan)
        summary: dict[str, object] = {"windows": windows,
                                      "failed windows": len(self.errors)}
        if self.errors:
            summary["errors"] = f"{len(self.errors)} windows failed: {self.errors[0]}"
        links = [("attention.mp4", "frames with the mean map overlaid (attention.mp4)"),
                 ("attention.npy", "maps [windows, T, heads, h, w] (attention.npy)")]
        sheets = sorted((self.folder / "sheets").glob("window_*.png"))[:4]
        images = [(f"sheets/{p.name}", f"window {int(p.stem.split('_')[1])}: frames, mean "
                   "over heads, each head") for p in sheets]
        keyframes = self.top.save(self.folder / "keyframes")
        write_report(self.folder / "report.html", f"{self.job.key}: attention", summary, images,
                     keyframes, links, report_settings(self.checkpoint, self.model, self.job))
        return {"video": self.job.key, **summary}


def run_attention(model: AttentionMaps, sources: Sequence[str | Path], output: str | Path,
                  checkpoint: str, progress_enabled: bool = True) -> dict:
    """Attention maps for every video of ``sources`` into ``output``; returns ``run.json``."""
    folder = RunFolder(output, "attention", {"checkpoint": checkpoint, **model.settings()},
                       model.runner.runtime(), weights=[checkpoint])
    return run_videos(model, folder, sources,
                      lambda path, job: AttentionVideo(model, path, job, checkpoint),
                      checkpoint, "endofm attention", progress_enabled)
