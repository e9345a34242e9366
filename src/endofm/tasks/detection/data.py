"""KUMC clips: every annotated frame with its neighbours from the same video.

A sample is the frame ``i`` of a video and the frames ``i + k * stride`` for
``k = -(T // 2) .. T - 1 - T // 2`` (clamped to the video), so the target sits at index
``T // 2`` as :class:`endofm.tasks.detection.model.ClipDetector` expects. Frames without boxes
are negatives (empty targets); frames marked ``annotated=False`` (COCO keyframe-only files
with ``data.unannotated=skip``) are only neighbours. Resizing to the min/max size happens in the
detector's ``GeneralizedRCNNTransform``, identically for all frames of a clip and for the boxes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from endofm.data import KumcFrame, KumcVideo
from endofm.data.images import read_image


def clip_indices(target: int, length: int, num_frames: int, stride: int) -> np.ndarray:
    """int64 ``[num_frames]`` frame indices around ``target`` (at ``num_frames // 2``),
    clamped to ``[0, length)``."""
    if not 0 <= target < length:
        raise ValueError(f"target frame {target} outside a video of {length} frames")
    offsets = (np.arange(num_frames) - num_frames // 2) * stride
    return np.clip(target + offsets, 0, length - 1).astype(np.int64)


def hflip_boxes(boxes: Tensor, width: int) -> Tensor:
    """Mirror ``xyxy`` boxes ``[n, 4]`` in an image ``width`` pixels wide."""
    return torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], 1)


class KumcClips(Dataset):
    """``ds[i]`` → ``(clip float [3, T, H, W] in [0, 1], {"boxes": float [n, 4] xyxy,
    "labels": int64 [n], "crowd_boxes": float [k, 4], "crowd_labels": int64 [k]},
    (video index, frame index))`` for every annotated frame; ``augment`` flips clip and boxes
    horizontally with probability ½."""

    def __init__(self, videos: list[KumcVideo], num_frames: int, stride: int,
                 augment: bool = False) -> None:
        if num_frames < 1 or stride < 1:
            raise ValueError(f"num_frames ({num_frames}) and stride ({stride}) must be >= 1")
        self.videos = videos
        self.num_frames, self.stride, self.augment = num_frames, stride, augment
        self.index = [(v, f) for v, video in enumerate(videos)
                      for f, frame in enumerate(video.frames) if frame.annotated]

    def __len__(self) -> int:
        return len(self.index)

    def frame(self, i: int) -> KumcFrame:
        v, f = self.index[i]
        return self.videos[v].frames[f]

    def __getitem__(self, i: int) -> tuple[Tensor, dict[str, Tensor], tuple[int, int]]:
        v, f = self.index[i]
        frames = self.videos[v].frames
        idx = clip_indices(f, len(frames), self.num_frames, self.stride)
        images = [read_image(frames[j].image) for j in idx]
        shape = images[self.num_frames // 2].shape
        for j, image in zip(idx, images, strict=True):
            if image.shape != shape:
                raise ValueError(f"{frames[j].image}: size {image.shape[:2]} differs from the "
                                 f"target frame's {shape[:2]} in video {self.videos[v].name}")
        clip = torch.from_numpy(np.stack(images)).permute(3, 0, 1, 2).float().div_(255)
        boxes = torch.as_tensor(frames[f].boxes, dtype=torch.float32).reshape(-1, 4)
        labels = torch.as_tensor(frames[f].labels, dtype=torch.int64).reshape(-1)
        crowd = torch.as_tensor(frames[f].crowd, dtype=torch.float32).reshape(-1, 4)
        if self.augment and torch.rand(()) < 0.5:
            clip, boxes = clip.flip(-1), hflip_boxes(boxes, shape[1])
            crowd = hflip_boxes(crowd, shape[1])
        crowd_labels = torch.as_tensor(frames[f].crowd_labels, dtype=torch.int64).reshape(-1)
        return clip, {"boxes": boxes, "labels": labels, "crowd_boxes": crowd,
                      "crowd_labels": crowd_labels}, (v, f)


def collate(batch: list) -> tuple[list[Tensor], list[dict[str, Tensor]], list[tuple[int, int]]]:
    """Lists (clips may differ in size; the detector pads them)."""
    clips, targets, keys = zip(*batch, strict=True)
    return list(clips), list(targets), list(keys)
