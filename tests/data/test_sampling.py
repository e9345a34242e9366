"""Clip sampling: window lengths, evenly spaced indices, random and evaluation clips."""

import numpy as np
import pytest
import torch

from endofm.data.sampling import (
    eval_clips,
    eval_window_starts,
    evenly_spaced,
    random_window,
    train_clip,
    window_frames,
)


def test_window_frames_follows_the_reference_rate():
    assert window_frames(8, 32, fps=30) == 256
    assert window_frames(8, 32, fps=15) == 128
    assert window_frames(8, 32, fps=60, target_fps=30) == 512
    with pytest.raises(ValueError):
        window_frames(8, 0, fps=30)


def test_evenly_spaced_truncates_and_clamps():
    assert evenly_spaced(0, 10, 3, 100).tolist() == [0, 5, 10]
    assert evenly_spaced(5, 40, 16, 40)[-1] == 39
    assert evenly_spaced(0, 7, 4, 100).tolist() == [0, 2, 4, 7]


def test_random_window_stays_inside_and_covers_all_starts():
    gen = torch.Generator().manual_seed(0)
    starts = set()
    for _ in range(200):
        window = random_window(20, 15, gen)
        assert len(window) == 15 and window[0] >= 0 and window[-1] <= 19
        assert np.all(np.diff(window) == 1)
        starts.add(int(window[0]))
    assert starts == set(range(6))
    assert random_window(10, 50, gen).tolist() == list(range(10))


def test_eval_windows_centred_and_spread():
    assert eval_window_starts(100, 40, 1).tolist() == [30]
    assert eval_window_starts(100, 40, 3).tolist() == [0, 30, 60]
    assert eval_window_starts(10, 40, 2).tolist() == [0, 0]


def test_train_and_eval_clips_shapes_and_bounds():
    clip = train_clip(300, fps=30, num_frames=8, frame_step=4)
    assert clip.shape == (8,) and clip.min() >= 0 and clip.max() < 300
    assert clip[-1] - clip[0] <= 31
    clips = eval_clips(300, fps=30, num_frames=8, frame_step=32, num_clips=2)
    assert clips.shape == (2, 8)
    assert clips[0, 0] == 0 and clips[1, -1] == 299
    short = eval_clips(20, fps=30, num_frames=8, frame_step=32)
    assert short[0].tolist() == evenly_spaced(0, 19, 8, 20).tolist()
