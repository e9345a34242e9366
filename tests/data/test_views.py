"""Pre-training views: shapes, frame counts, frame ranges, crop scales, collate."""

import numpy as np
import pytest
import torch

from endofm.data import PretrainViews, PretrainViewsConfig, collate_views
from endofm.data.pretrain_dataset import Skip
from endofm.data.views import group_by_shape, needed_frames

SMALL = PretrainViewsConfig(global_size=32, local_size=16)


def window(length: int = 64, height: int = 40, width: int = 48) -> np.ndarray:
    gen = np.random.default_rng(0)
    return gen.integers(0, 256, (length, height, width, 3), dtype=np.uint8)


def test_view_shapes_and_frame_counts():
    torch.manual_seed(0)
    views = PretrainViews(SMALL)(window())
    assert views[0].shape == (3, 8, 32, 32) and views[1].shape == (3, 16, 32, 32)
    assert [v.shape[1] for v in views[2:]] == [2, 2, 4, 4, 8, 8, 16, 16]
    assert all(v.shape[2:] == (16, 16) for v in views[2:])
    assert all(v.dtype == torch.float32 for v in views)


@pytest.mark.parametrize("length", [16, 64, 256])
def test_temporal_ranges_follow_the_release(length):
    torch.manual_seed(0)
    views = PretrainViews()
    for _ in range(20):
        indices = views.temporal_indices(length)
        g1, g2 = indices[0], indices[1]
        assert g1[0] == 0 and g1[-1] == length - 5 and np.all(np.diff(g1) >= 0)
        assert g2[0] == 5 and g2[-1] == length - 1
        width = length // 8
        for local in indices[2:]:
            assert local[0] >= 0 and local[-1] <= length - 1
            assert local[-1] - local[0] == width


def test_local_windows_start_anywhere_allowed():
    torch.manual_seed(0)
    views = PretrainViews()
    starts = {int(views.temporal_indices(32)[2][0]) for _ in range(300)}
    assert starts == set(range(32 - 4))


def test_crop_boxes_respect_scale_ranges():
    torch.manual_seed(0)
    views = PretrainViews()
    for _ in range(10):
        for k, plan in enumerate(views.plan(64, 60, 80)):
            top, left, h, w = plan.box
            area = h * w / (60 * 80)
            lo, hi = (0.4, 1.0) if k < 2 else (0.05, 0.4)
            assert lo - 0.02 <= area <= hi + 0.02
            assert plan.size == (224 if k < 2 else 96)


def test_same_crop_for_every_frame_of_a_view():
    torch.manual_seed(0)
    still = np.repeat(window(1), 40, axis=0)
    for view in PretrainViews(SMALL)(still):
        assert torch.allclose(view, view[:, :1].expand_as(view))


def test_render_uses_only_needed_frames():
    torch.manual_seed(0)
    views = PretrainViews(SMALL)
    frames = window(64)
    plans = views.plan(64, 40, 48)
    positions = needed_frames(plans)
    assert len(positions) < 64
    torch.manual_seed(1)
    sparse = views.render(torch.from_numpy(frames[positions]).permute(0, 3, 1, 2), positions, plans)
    torch.manual_seed(1)
    full = views.render(torch.from_numpy(frames).permute(0, 3, 1, 2), np.arange(64), plans)
    assert all(torch.equal(a, b) for a, b in zip(sparse, full, strict=True))


def test_short_window_is_an_error():
    with pytest.raises(ValueError, match="min_window_frames"):
        PretrainViews().temporal_indices(10)


def test_collate_and_group_by_shape():
    torch.manual_seed(0)
    views = PretrainViews(SMALL)
    batch = collate_views([views(window()), Skip("x.mp4", "broken"), views(window())])
    assert len(batch) == 10 and batch[1].shape == (2, 3, 16, 32, 32)
    groups = group_by_shape(batch)
    assert [idx for idx, _ in groups] == [[0], [1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert torch.equal(groups[2][1][2:], batch[3])
    with pytest.raises(RuntimeError, match="skipped"):
        collate_views([Skip("x.mp4", "broken")])
