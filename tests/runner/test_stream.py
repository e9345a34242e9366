"""Window streaming: a batch of one video's windows is decoded in one pass, equal to decoding
each window alone, and a failing batch falls back to its windows one by one."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import torch

from endofm.data import VideoError, open_video, write_video
from endofm.runner.stream import (
    FrameSize,
    VideoBatches,
    VideoJob,
    WindowDataset,
    nearby_runs,
    stream_windows,
)
from endofm.runner.windows import WindowSpec
from tests.inference.conftest import moving_frames


class CountingSource:
    """A video source that counts its ``read`` calls and fails past ``readable`` frames."""

    def __init__(self, source, readable: int | None = None) -> None:
        self.source, self.readable, self.reads = source, readable, 0

    def __getattr__(self, name: str):
        return getattr(self.source, name)

    def read(self, indices: Sequence[int], short_side: int | None = None) -> np.ndarray:
        self.reads += 1
        if self.readable is not None and max(indices) >= self.readable:
            raise VideoError(self.source.path, "frame could not be decoded (cut)")
        return self.source.read(indices, short_side)


def dataset(tmp_path, readable: int | None = None,
            stride: int = 6) -> tuple[WindowDataset, CountingSource]:
    """Windows of 4 frames 3 apart (frames ``stride*k .. stride*k + 9``) over 60 frames."""
    video = open_video(write_video(tmp_path / "v.mp4", moving_frames(60), fps=30))
    source = CountingSource(video, readable)
    plan = WindowSpec(num_frames=4, frame_step=3, stride=stride).plan(video.num_frames,
                                                                        video.fps)
    return WindowDataset([VideoJob("v.mp4", source, plan)], FrameSize(32)), source


def test_a_batch_is_one_read_equal_to_its_windows_read_alone(tmp_path):
    data, source = dataset(tmp_path)
    (first, *_) = list(VideoBatches(data, 4))
    batch = data.__getitems__(first)
    assert source.reads == 1 and len(batch) == 4
    for position, (job, window, clip) in zip(first, batch, strict=True):
        alone = data[position]
        assert (job, window.index) == (alone[0], alone[1].index) and clip.shape == (4, 3, 32, 32)
        assert torch.equal(clip, alone[2])


def test_a_failing_batch_keeps_its_readable_windows(tmp_path):
    data, source = dataset(tmp_path, readable=22)  # window k reads frames 6k..6k+9
    batch = data.__getitems__(list(range(5)))
    assert source.reads == 1 + 5
    assert [isinstance(clip, torch.Tensor) for _, _, clip in batch] == [True] * 3 + [False] * 2
    assert "could not be decoded" in batch[4][2]


def test_windows_far_apart_are_decoded_apart(tmp_path):
    data, source = dataset(tmp_path, stride=24)  # frames 24k..24k+9: gaps of 15 > spans of 10
    batch = data.__getitems__([0, 1, 2])
    assert source.reads == 3 and all(isinstance(clip, torch.Tensor) for _, _, clip in batch)
    assert [len(run) for run in nearby_runs([data.jobs[0].plan[k] for k in range(3)])] == [1] * 3
    data, _ = dataset(tmp_path, stride=18)  # gaps of 9: one run
    assert [len(run) for run in nearby_runs([data.jobs[0].plan[k] for k in range(3)])] == [3]


def test_a_negative_worker_count_or_empty_batch_is_refused_before_any_decoding():
    with pytest.raises(ValueError, match="num_workers must be >= 0 .*got -1"):
        next(stream_windows([], FrameSize(32), batch_size=2, num_workers=-1))
    with pytest.raises(ValueError, match="batch size must be at least 1, got 0"):
        next(stream_windows([], FrameSize(32), batch_size=0))
