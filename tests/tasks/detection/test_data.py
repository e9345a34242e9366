"""Clips around annotated frames, clamped at video ends; box-consistent flips; negatives."""

import numpy as np
import pytest
import torch
from PIL import Image

from endofm.data import KumcFrame, KumcVideo, read_kumc
from endofm.tasks.detection.data import KumcClips, clip_indices, collate, hflip_boxes


def test_clip_indices_centre_and_clamp():
    assert clip_indices(5, 10, 3, 2).tolist() == [3, 5, 7]
    assert clip_indices(0, 10, 4, 1).tolist() == [0, 0, 0, 1]
    assert clip_indices(9, 10, 3, 3).tolist() == [6, 9, 9]
    with pytest.raises(ValueError, match="outside"):
        clip_indices(10, 10, 3, 1)


def test_hflip_boxes():
    boxes = torch.tensor([[2.0, 3.0, 10.0, 8.0]])
    assert hflip_boxes(boxes, 32).tolist() == [[22.0, 3.0, 30.0, 8.0]]


def _video(tmp_path, n=4, w=24, h=16) -> KumcVideo:
    frames = []
    for i in range(n):
        image = np.zeros((h, w, 3), np.uint8)
        image[:, :, 0] = 10 * i
        image[2:6, 1:5] = 255
        Image.fromarray(image).save(tmp_path / f"{i}.png")
        boxes = np.array([[1, 2, 5, 6]], np.float32) if i else np.zeros((0, 4), np.float32)
        labels = np.array([2] if i else [], np.int64)
        frames.append(KumcFrame(tmp_path / f"{i}.png", boxes, labels))
    return KumcVideo("v", frames)


def test_dataset_clip_target_and_flip(tmp_path):
    video = _video(tmp_path)
    clip, target, key = KumcClips([video], num_frames=3, stride=1)[0]
    assert key == (0, 0)
    assert clip.shape == (3, 3, 16, 24) and clip.dtype == torch.float32
    assert [round(float(clip[0, t, 10, 10]) * 255) for t in range(3)] == [0, 0, 10]
    assert target["boxes"].shape == (0, 4) and target["labels"].shape == (0,)
    torch.manual_seed(0)
    flipped = KumcClips([video], num_frames=3, stride=1, augment=True)
    for _ in range(8):
        clip, target, _ = flipped[2]
        x0, y0, x1, y1 = target["boxes"][0].int().tolist()
        assert torch.all(clip[:, 1, y0:y1, x0:x1] == 1.0)
        assert target["labels"].tolist() == [2]


def test_mismatched_frame_size_is_an_error(tmp_path):
    video = _video(tmp_path)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "0.png")
    with pytest.raises(ValueError, match="0.png"):
        KumcClips([video], 3, 1)[1]


def test_sample_data_has_negatives(sample_data):
    ds = KumcClips(read_kumc(sample_data["kumc"], "train"), num_frames=3, stride=2)
    assert len(ds) == sum(len(v.frames) for v in ds.videos)
    clips, targets, keys = collate([ds[i] for i in range(len(ds))])
    assert any(len(t["boxes"]) == 0 for t in targets)
    assert any(len(t["boxes"]) > 0 for t in targets)
    assert all(c.shape[:2] == (3, 3) for c in clips)
