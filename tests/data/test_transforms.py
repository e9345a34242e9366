"""uint8 clip transforms: shapes, dtypes, same crop for all frames, normalisation round trip."""

import numpy as np
import pytest
import torch

from endofm.data import transforms as TF


def clip(t: int = 3, h: int = 40, w: int = 60) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (t, 3, h, w), dtype=torch.uint8, generator=gen)


def test_to_clip_checks_layout():
    frames = np.zeros((2, 8, 10, 3), np.uint8)
    assert TF.to_clip(frames).shape == (2, 3, 8, 10)
    with pytest.raises(ValueError, match="uint8"):
        TF.to_clip(frames.astype(np.float32))


def test_resized_crop_applies_one_box_to_all_frames():
    x = clip()
    x[1] = x[0]
    out = TF.resized_crop(x, (5, 7, 20, 30), 16)
    assert out.shape == (3, 3, 16, 16) and out.dtype == torch.uint8
    assert torch.equal(out[0], out[1])


@pytest.mark.parametrize("scale", [(0.05, 0.4), (0.4, 1.0)])
def test_random_resized_crop_box_scale_range(scale):
    torch.manual_seed(0)
    for _ in range(50):
        top, left, h, w = TF.random_resized_crop_box(48, 64, scale)
        assert 0 <= top and top + h <= 48 and 0 <= left and left + w <= 64
        assert scale[0] - 0.02 <= h * w / (48 * 64) <= scale[1] + 0.02


def test_resize_and_crops():
    x = clip(2, 40, 60)
    assert TF.short_side_resize(x, 20).shape == (2, 3, 20, 30)
    assert TF.center_crop(x, 32).shape == (2, 3, 32, 32)
    boxes = TF.uniform_crop_boxes(40, 60, 32, 3)
    assert [b[1] for b in boxes] == [0, 14, 28] and all(b[0] == 4 for b in boxes)
    assert TF.uniform_crop_boxes(60, 40, 32, 1) == [(14, 4, 32, 32)]
    assert TF.crop(x, boxes[2]).shape == (2, 3, 32, 32)


def test_flip_jitter_grayscale_keep_uint8():
    x = clip()
    assert torch.equal(TF.hflip(x)[..., 0], x[..., -1])
    torch.manual_seed(0)
    jittered = TF.color_jitter(x, 0.4, 0.4, 0.2, 0.0)
    assert jittered.dtype == torch.uint8 and not torch.equal(jittered, x)
    gray = TF.grayscale(x)
    assert torch.equal(gray[:, 0], gray[:, 1]) and torch.equal(gray[:, 1], gray[:, 2])


def test_normalize_layout_and_round_trip():
    x = clip(2, 8, 8)
    out = TF.normalize(x)
    assert out.shape == (3, 2, 8, 8) and out.dtype == torch.float32
    expected = (x[1, 0, 3, 4].item() / 255 - 0.485) / 0.229
    assert out[0, 1, 3, 4].item() == pytest.approx(expected, abs=1e-5)
    assert torch.equal(TF.denormalize(out), x.permute(0, 2, 3, 1))
