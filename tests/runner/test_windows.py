"""Window plans: spans in frames or seconds, clamped last windows, offsets."""

import re

import numpy as np
import pytest

from endofm.runner.windows import WindowSpec, span_frames


def test_window_indices_follow_the_formula_with_a_clamped_last_window():
    plan = WindowSpec(num_frames=4, frame_step=3, stride=5).plan(video_frames=17, fps=30.0)
    # every k with k*5 < 17: k = 0..3
    assert len(plan) == 4
    expected = [[0, 3, 6, 9], [5, 8, 11, 14], [10, 13, 16, 16], [15, 16, 16, 16]]
    assert [plan[k].frames.tolist() for k in range(4)] == expected
    assert [plan[k].partial for k in range(4)] == [False, False, True, True]
    row = plan[2].row()
    assert row == {"window": 2, "first_frame": 10, "last_frame": 16, "start_s": 0.333333,
                   "end_s": 0.566667, "partial": 1}
    with pytest.raises(IndexError):
        plan[4]
    exact = WindowSpec(num_frames=4, frame_step=3, stride=9).plan(video_frames=10, fps=30.0)
    assert exact[0].frames.tolist() == [0, 3, 6, 9] and not exact[0].partial  # ends on N-1
    assert exact[1].frames.tolist() == [9, 9, 9, 9] and exact[1].partial


def test_defaults_are_the_release_rate_rescaled_and_adjacent_windows():
    spec = WindowSpec(num_frames=8)
    assert spec.resolve(30.0) == (32, 256)
    assert spec.resolve(25.0) == (27, 216)  # 32 * 25 / 30 = 26.7
    assert spec.resolve(60.0) == (64, 512)
    plan = spec.plan(video_frames=600, fps=30.0)
    assert len(plan) == 3 and plan[1].frames.tolist() == list(range(256, 512, 32))


def test_spans_in_seconds_and_frames():
    assert span_frames("2s", 30.0) == 60 and span_frames("0.5s", 25.0) == 12
    assert span_frames(7, 30.0) == span_frames("7", 30.0) == 7
    assert WindowSpec(4, frame_step="0.1s", stride="1s").resolve(30.0) == (3, 30)
    for bad in ("abc", "0", "1.5", "-2s"):
        with pytest.raises(ValueError):
            span_frames(bad, 30.0)


@pytest.mark.parametrize(("spans", "message"), [
    ({"stride": "0"}, "stride '0' must be positive"),
    ({"frame_step": "0s"}, "frame step '0s' must be positive"),
    ({"stride": 0}, "stride 0 must be positive"),
    ({"frame_step": "1.5"}, "frame step '1.5': a frame count must be a whole number"),
    ({"stride": "2 sec"}, "invalid stride '2 sec': give frames"),
])
def test_a_bad_span_is_refused_when_the_spec_is_made_naming_it(spans, message):
    """Before any video is opened (a zero stride used to fail at the first video as "span '0'
    must be positive", after the progress bar had started)."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        WindowSpec(8, **spans)


def test_offset_range_keeps_absolute_frame_numbers():
    plan = WindowSpec(2, 1, 2).plan(video_frames=3, fps=10.0, offset=100)
    assert [w.frames.tolist() for w in (plan[0], plan[1])] == [[100, 101], [102, 102]]
    assert np.isclose(plan[1].start_s, 10.2) and plan[1].partial
