"""``VideoEncoder``: Endo-FM embeddings for every window of a video, streamed.

>>> encoder = VideoEncoder("endo_fm.pth")                      # 8 frames, step 32 @ 30 fps
>>> features, windows = encoder.encode("procedure.mp4")       # [windows, 768], list[Window]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from endofm.data import VideoError
from endofm.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    KINETICS_MEAN,
    KINETICS_STD,
    normalize_batch,
)
from endofm.inference.backbone import FeatureExtractor, load_backbone
from endofm.inference.windowed import DEFAULT_FOLDER_FPS, Windowed, check_num_heads
from endofm.models import VisionTransformer
from endofm.runner import FrameSize, RunnerSettings, Window, WindowRunner, WindowSpec

# The release's downstream normalisation (Kinetics) and its pre-training one (ImageNet).
NORMALIZATIONS = {"kinetics": (KINETICS_MEAN, KINETICS_STD),
                  "imagenet": (IMAGENET_MEAN, IMAGENET_STD)}


class BackboneWindows(Windowed):
    """A backbone run over the windows of videos (what ``extract`` and ``attention`` share).

    ``model``: a backbone or a checkpoint (any layout ``create_model`` reads, or a fine-tuned
    task directory; ``num_heads`` for a released file of a width no named config has). Window
    ``k`` covers frames ``k*stride + j*frame_step`` (see :mod:`endofm.runner.windows`);
    ``num_frames`` defaults to the model's. Frames are resized to a ``size`` short side
    (default: the model's image size) and centre-cropped (``crop``), normalised with
    ``normalization`` (``kinetics``: the release's downstream mean/std). Decoding runs in
    ``num_workers`` DataLoader workers, overlapped with the model. ``precision="auto"`` picks
    bf16 where the device has native bf16, else fp32. Frame folders play at ``folder_fps``.
    """

    def __init__(self, model: VisionTransformer | str | Path, num_frames: int | None = None,
                 frame_step: str | int | None = None, stride: str | int | None = None, *,
                 size: int | None = None, crop: bool = True, batch_size: int = 8,
                 num_workers: int = 0, device: str = "auto", precision: str = "auto",
                 normalization: str = "kinetics", compile: bool = False,
                 folder_fps: float = DEFAULT_FOLDER_FPS, num_heads: int | None = None) -> None:
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {sorted(NORMALIZATIONS)}, "
                             f"got {normalization!r}")
        runner = WindowRunner(RunnerSettings(device, precision, batch_size, num_workers,
                                             compile))
        if isinstance(model, (str, Path)):
            check_num_heads(model, num_heads)
        backbone = (load_backbone(model, num_heads) if isinstance(model, (str, Path))
                    else model)
        super().__init__(runner, WindowSpec(backbone.num_frames if num_frames is None
                                            else num_frames, frame_step, stride), folder_fps)
        self.backbone = runner.place(backbone)
        self.frames = FrameSize(backbone.img_size if size is None else size, crop,
                                multiple=backbone.patch_size)
        self.normalization = normalization

    @property
    def frame_size(self) -> FrameSize:
        return self.frames

    def settings(self) -> dict[str, object]:
        """Everything that determines the outputs (recorded in ``run.json``)."""
        return {**super().settings(), "normalization": self.normalization}

    def prepare(self, clips: Tensor) -> Tensor:
        """uint8 ``[b, T, 3, H, W]`` → normalised float32 ``[b, 3, T, H, W]``."""
        return normalize_batch(clips, *NORMALIZATIONS[self.normalization])

    def finish(self, raw: Tensor, clips: Tensor) -> np.ndarray:
        return raw.float().cpu().numpy()


class VideoEncoder(BackboneWindows):
    """Sliding-window embeddings of whole videos, streamed (decoding overlapped with the
    model): window ``k`` covers frames ``k*stride + j*frame_step``, ``j < num_frames``.

    Args:
        model: a backbone, or a checkpoint: any layout ``create_model`` reads, a fine-tuned
            task directory (its backbone), or an ``hf-hub:`` name.
        num_frames: frames per window ``T``; ``None``: the model's.
        frame_step: the step between a window's frames: frames (``4``) or seconds
            (``"0.5s"``); ``None``: the release's rate.
        stride: the step between windows' first frames, in the same units; ``None``:
            adjacent windows.
        features: what each window gives, with ``D`` the model's width: ``cls`` the
            normalised CLS token ``[D]``; ``mean_patch`` the mean patch token ``[D]``;
            ``patch_grid`` the patch tokens averaged over the window's frames ``[D, h, w]``
            (``h = H / patch_size``, ``w = W / patch_size`` of the resized frames).
        **options: :class:`BackboneWindows`'s keywords: ``size``, ``crop``, ``batch_size``,
            ``num_workers``, ``device``, ``precision``, ``normalization``, ``compile``,
            ``folder_fps``, ``num_heads``.
    """

    def __init__(self, model: VisionTransformer | str | Path, num_frames: int | None = None,
                 frame_step: str | int | None = None, stride: str | int | None = None, *,
                 features: str = "cls", **options: Any) -> None:
        super().__init__(model, num_frames, frame_step, stride, **options)
        self.features = features
        self.extractor = self.runner.model_call(FeatureExtractor(self.backbone, features))

    def settings(self) -> dict[str, object]:
        return {**super().settings(), "features": self.features}

    def model_fn(self, x: Tensor) -> Tensor:
        """The model call: ``[B, 3, T, H, W]`` → features ``[B, D]`` or ``[B, D, h, w]``."""
        return self.extractor(x)

    def encode(self, path: str | Path) -> tuple[np.ndarray, list[Window]]:
        """Features of every window of one video.

        A window that cannot be decoded raises :class:`endofm.data.VideoError` naming it (the
        ``extract`` command keeps the readable windows instead).

        Args:
            path: a video file or a folder of frames (played at ``folder_fps``).

        Returns:
            ``(features, windows)``: float32 ``[windows, D]`` (``cls``, ``mean_patch``) or
            ``[windows, D, h, w]`` (``patch_grid``), row ``k`` the features of
            ``windows[k]``, a :class:`endofm.runner.Window` (its frame indices ``[T]``, its
            time span, whether it was clamped at the video's end).
        """
        job = self.job(path)
        feats, windows = [], []
        for batch in self.run([job]):
            if batch.errors:
                window, reason = batch.errors[0]
                raise VideoError(path, f"window {window.index} (frames {window.first_frame}-"
                                       f"{window.last_frame}): {reason}")
            feats.append(batch.outputs)
            windows += batch.windows
        return np.concatenate(feats), windows
