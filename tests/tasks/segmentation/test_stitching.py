import pytest
import torch

from endofm.tasks.segmentation.stitching import stitch, window_indices, window_starts


def test_window_starts_cover_the_end():
    assert window_starts(6, 3, 2) == [0, 2, 3]
    assert window_starts(7, 3, 2) == [0, 2, 4]
    assert window_starts(2, 4, 2) == [0]
    with pytest.raises(ValueError):
        window_starts(5, 3, 4)


def test_overlapping_windows_are_averaged_exactly():
    starts = window_starts(6, 3, 2)
    preds = [torch.full((3, 2, 1, 1), v) for v in (1.0, 2.0, 4.0)]
    out = stitch(preds, starts, 6)
    assert out.shape == (6, 2, 1, 1)
    assert out[:, 0, 0, 0].tolist() == [1.0, 1.0, 1.5, 3.0, 3.0, 4.0]


def test_short_sequence_padding_is_dropped():
    assert window_indices(0, 4, 2) == [0, 1, 1, 1]
    pred = torch.arange(4.0).view(4, 1)
    assert stitch([pred], [0], 2)[:, 0].tolist() == [0.0, 1.0]


def test_uncovered_frames_are_an_error():
    with pytest.raises(ValueError, match="covered by no window"):
        stitch([torch.zeros(2, 1)], [0], 4)
