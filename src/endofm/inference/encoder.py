"""``VideoEncoder``: Endo-FM embeddings for every window of a video, streamed.

>>> encoder = VideoEncoder("endo_fm.pth")                      # 8 frames, step 32 @ 30 fps
>>> features, windows = encoder.encode("procedure.mp4")       # [windows, 768], list[Window]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from endofm.data import VideoError, open_video
from endofm.data.transforms import IMAGENET_MEAN, IMAGENET_STD, KINETICS_MEAN, KINETICS_STD
from endofm.inference.backbone import FeatureExtractor, load_backbone, maybe_compile
from endofm.inference.stream import FrameSize, VideoJob, check_loader_settings, stream_windows
from endofm.inference.windows import Window, WindowSpec
from endofm.models import VisionTransformer
from endofm.utils.device import autocast, resolve_device, resolve_precision

# The release's downstream normalisation (Kinetics) and its pre-training one (ImageNet).
NORMALIZATIONS = {"kinetics": (KINETICS_MEAN, KINETICS_STD),
                  "imagenet": (IMAGENET_MEAN, IMAGENET_STD)}


def normalize_batch(clips: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """uint8 ``[B, T, 3, H, W]`` → normalised float32 ``[B, 3, T, H, W]`` (on ``clips``'s
    device; the same arithmetic as :func:`endofm.data.transforms.normalize`)."""
    x = clips.to(torch.float32).div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32, device=x.device).view(1, 1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=x.device).view(1, 1, 3, 1, 1)
    return x.sub_(m).div_(s).permute(0, 2, 1, 3, 4).contiguous()


def open_job(path: str | Path, spec: WindowSpec, key: str | None = None,
             start_s: float | None = None, end_s: float | None = None,
             folder_fps: float = 30.0) -> VideoJob:
    """Open a video and plan its windows (over ``[start_s, end_s)`` seconds when given)."""
    source = open_video(path, folder_fps)
    first, count = 0, source.num_frames
    if start_s is not None and end_s is not None:
        first = min(round(start_s * source.fps), source.num_frames - 1)
        count = max(1, min(round(end_s * source.fps), source.num_frames) - first)
    return VideoJob(key or Path(path).name, source, spec.plan(count, source.fps, first))


@dataclass
class EncodedBatch:
    """Features of consecutive windows of ``jobs[job]``: ``features`` float32 ``[b, ...]`` for
    ``windows``; ``errors`` the windows that could not be decoded, with the reason."""

    job: int
    windows: list[Window]
    features: np.ndarray | None
    errors: list[tuple[Window, str]]
    last: bool


class VideoEncoder:
    """Sliding-window embeddings of whole videos.

    ``model``: a backbone or a checkpoint (any layout ``create_model`` reads, or a fine-tuned
    task directory). Window ``k`` covers frames ``k*stride + j*frame_step`` (see
    :mod:`endofm.inference.windows`); ``num_frames`` defaults to the model's. Frames are resized
    to a ``size`` short side (default: the model's image size) and centre-cropped (``crop``),
    normalised with ``normalization`` (``kinetics``: the release's downstream mean/std).
    ``features``: ``cls`` ``[D]``, ``mean_patch`` ``[D]`` or ``patch_grid`` ``[D, h, w]`` per
    window. Decoding runs in ``num_workers`` DataLoader workers, overlapped with the model.
    ``precision="auto"`` picks bf16 where the device has native bf16, else fp32.
    """

    def __init__(self, model: VisionTransformer | str | Path, num_frames: int | None = None,
                 frame_step: str | int | None = None, stride: str | int | None = None, *,
                 size: int | None = None, crop: bool = True, features: str = "cls",
                 batch_size: int = 8, num_workers: int = 0, device: str = "auto",
                 precision: str = "auto", normalization: str = "kinetics",
                 compile: bool = False, folder_fps: float = 30.0) -> None:
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {sorted(NORMALIZATIONS)}, "
                             f"got {normalization!r}")
        check_loader_settings(batch_size, num_workers)
        backbone = load_backbone(model) if isinstance(model, (str, Path)) else model
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.backbone = backbone.eval().to(self.device)
        self.spec = WindowSpec(backbone.num_frames if num_frames is None else num_frames,
                               frame_step, stride)
        self.frame_size = FrameSize(backbone.img_size if size is None else size, crop,
                                    multiple=backbone.patch_size)
        self.features, self.normalization = features, normalization
        self.batch_size, self.num_workers = batch_size, num_workers
        self.compiled, self.folder_fps = compile, folder_fps
        self.extractor = maybe_compile(FeatureExtractor(self.backbone, features), compile,
                                       self.device, self.precision)

    def settings(self) -> dict[str, object]:
        """Everything that determines the features (recorded in ``run.json``)."""
        return {"num_frames": self.spec.num_frames,
                "frame_step": None if self.spec.frame_step is None else str(self.spec.frame_step),
                "stride": None if self.spec.stride is None else str(self.spec.stride),
                "size": self.frame_size.size, "crop": self.frame_size.crop,
                "features": self.features, "normalization": self.normalization,
                "precision": self.precision}

    @torch.inference_mode()
    def forward(self, clips: Tensor) -> np.ndarray:
        """uint8 ``[b, T, 3, H, W]`` → float32 features ``[b, ...]`` (numpy, CPU)."""
        b = clips.shape[0]
        x = normalize_batch(clips.to(self.device, non_blocking=True),
                            *NORMALIZATIONS[self.normalization])
        if self.compiled and b < self.batch_size:  # fixed shapes: no recompilation
            x = torch.cat([x, x[-1:].expand(self.batch_size - b, *x.shape[1:])])
        with autocast(self.device, self.precision):
            out = self.extractor(x)
        return out[:b].float().cpu().numpy()

    def run(self, jobs: Sequence[VideoJob]) -> Iterator[EncodedBatch]:
        """Features of every window of ``jobs``, batch by batch, in order."""
        pin = self.device.type == "cuda"
        for batch in stream_windows(jobs, self.frame_size, self.batch_size, self.num_workers,
                                    pin):
            feats = self.forward(batch.clips) if batch.clips is not None else None
            yield EncodedBatch(batch.job, batch.windows, feats, batch.errors, batch.last)

    def job(self, path: str | Path, key: str | None = None, start_s: float | None = None,
            end_s: float | None = None) -> VideoJob:
        """Open ``path`` and plan its windows with this encoder's settings."""
        return open_job(path, self.spec, key, start_s, end_s, self.folder_fps)

    def encode(self, path: str | Path) -> tuple[np.ndarray, list[Window]]:
        """Features of every window of one video: float32 ``[windows, ...]`` and the windows.

        A window that cannot be decoded raises :class:`endofm.data.VideoError` naming it (the
        ``extract`` command keeps the readable windows instead).
        """
        job = self.job(path)
        feats, windows = [], []
        for batch in self.run([job]):
            if batch.errors:
                window, reason = batch.errors[0]
                raise VideoError(path, f"window {window.index} (frames {window.first_frame}-"
                                       f"{window.last_frame}): {reason}")
            feats.append(batch.features)
            windows += batch.windows
        return np.concatenate(feats), windows
