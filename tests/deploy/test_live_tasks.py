"""A live frame is shaped as the predictor's frame maker shapes a decoded clip."""

from __future__ import annotations

import numpy as np
import torch

from endofm.deploy.live_tasks import shape_frame
from endofm.runner import FrameSize, NativeFrames


def frame(height: int, width: int) -> np.ndarray:
    """uint8 ``[H, W, 3]`` whose every pixel differs (so a shifted crop is seen)."""
    values = np.arange(height * width * 3) % 251
    return values.reshape(height, width, 3).astype(np.uint8)


def test_native_frames_keep_the_frame():
    image = frame(40, 56)
    assert torch.equal(shape_frame(image, NativeFrames()),
                       torch.from_numpy(image).permute(2, 0, 1))


def test_without_a_crop_the_largest_centred_region_of_patch_multiples_is_kept():
    image = frame(40, 56)  # not upscaled: 40x56 -> the centred 32x48
    shaped = shape_frame(image, FrameSize(size=32, crop=False, multiple=16, upscale=False))
    assert torch.equal(shaped, torch.from_numpy(image[4:36, 4:52]).permute(2, 0, 1))


def test_a_small_frame_is_upscaled_then_centre_cropped():
    image = frame(16, 24)
    assert shape_frame(image, FrameSize(size=32)).shape == (3, 32, 32)
    kept = shape_frame(image, FrameSize(size=32, upscale=False, crop=False))
    assert kept.shape == (3, 16, 16)  # its own size, cut to the 16-pixel patches
