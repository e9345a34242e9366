"""What the model looks at: last-block CLS → patch spatial attention, per frame (DINO style).

For each frame the CLS query's attention over that frame's patches is taken from the last
block's spatial attention, per head and averaged over heads. The CLS → CLS weight is dropped and
each map renormalised, so every map sums to 1 over the patches.

``endofm attention`` writes, per video ``DIR/<video>/``: ``attention.npy`` (float16
``[windows, T, heads, h, w]``), ``sheets/window_<k>.png`` (rows: frames, mean-over-heads overlay,
each head) and ``attention.mp4`` (every window's frames with the mean map overlaid).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from endofm.data import VideoError
from endofm.inference.encoder import NORMALIZATIONS, VideoEncoder, normalize_batch
from endofm.inference.extract import FeatureWriter, collect_inputs
from endofm.inference.predict_run import OverlayVideo
from endofm.inference.progress import progress_bar
from endofm.inference.stream import stream_windows
from endofm.utils.device import autocast
from endofm.utils.io import atomic_write, atomic_write_json

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


class AttentionRun:
    """Attention maps of every window of videos, with an encoder's window and frame settings."""

    def __init__(self, encoder: VideoEncoder) -> None:
        self.encoder = encoder

    @torch.inference_mode()
    def maps(self, clips: Tensor) -> np.ndarray:
        """uint8 ``[b, T, 3, H, W]`` → float32 ``[b, T, heads, h, w]``."""
        enc = self.encoder
        x = normalize_batch(clips.to(enc.device), *NORMALIZATIONS[enc.normalization])
        with autocast(enc.device, enc.precision):
            return cls_patch_attention(enc.backbone, x).cpu().numpy()

    def video(self, path: Path, key: str, folder: Path, progress: bool) -> dict:
        """Write one video's maps, sheets and MP4; returns its summary."""
        job = self.encoder.job(path, key)
        folder.mkdir(parents=True, exist_ok=True)
        movie = OverlayVideo(folder / "attention.mp4", job.source.fps / job.plan.step)
        writer, failed = None, []
        bar = progress_bar(len(job.plan), key, "window", progress, position=1, leave=False)
        enc = self.encoder
        for batch in stream_windows([job], enc.frame_size, enc.batch_size, enc.num_workers):
            failed += [{"window": w.index, "reason": r} for w, r in batch.errors]
            bar.update(len(batch.windows) + len(batch.errors))
            if batch.clips is None:
                continue
            maps = self.maps(batch.clips)
            if writer is None:
                writer = FeatureWriter(folder / "attention.npy", len(job.plan), maps.shape[1:],
                                       "float16")
            writer.write(maps)
            for window, clip, wmaps in zip(batch.windows, batch.clips, maps, strict=True):
                frames = clip.permute(0, 2, 3, 1).numpy()
                sheet = window_sheet(frames, wmaps)
                atomic_write(folder / "sheets" / f"window_{window.index:05d}.png",
                             lambda tmp, s=sheet: Image.fromarray(s).save(tmp, "PNG"))
                for frame, fmaps in zip(frames, wmaps, strict=True):
                    movie.write(heat_overlay(frame, fmaps.mean(0)))
        bar.close()
        movie.close()
        if writer is not None:
            writer.close()
        return {"video": key, "windows": len(job.plan), "failed": failed}


def run_attention(encoder: VideoEncoder, sources: Sequence[str | Path], output: str | Path,
                  checkpoint: str, progress: bool = True) -> dict:
    """Attention maps for every video of ``sources`` into ``output``; returns ``run.json``."""
    output = Path(output)
    skipped: list[dict] = []
    inputs = collect_inputs(sources, skipped)
    runner, videos, errors = AttentionRun(encoder), [], []
    bar = progress_bar(len(inputs), "videos", "video", progress)
    for v in inputs:
        try:
            summary = runner.video(v.path, v.key, output / v.stem, progress)
        except VideoError as exc:
            errors.append({"path": str(v.path), "reason": exc.reason})
        else:
            videos.append(summary)
            if summary["failed"]:
                errors.append({"path": str(v.path), "reason": summary["failed"][0]["reason"],
                               "failed_windows": len(summary["failed"])})
        bar.update()
    bar.close()
    run = {"checkpoint": checkpoint, "settings": encoder.settings(), "videos": videos,
           "errors": errors, "skipped": skipped}
    atomic_write_json(run, output / "run.json")
    return run
