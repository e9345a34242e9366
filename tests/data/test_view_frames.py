"""The exact frame indices of the two global views (docs/release.md#pre-training-recipe),
computed by hand.

Global view 1 takes 8 frames evenly over window frames ``[0, L - 5]``; global view 2 takes 16
frames evenly over ``[5, L]`` (the index ``L`` clamped to the last frame ``L - 1``). "Evenly" is
``linspace`` truncated to integers, so the inner indices show which end point was used.
"""

import pytest

from endofm.data import PretrainViews, PretrainViewsConfig

# L = 64: view 1 at 0 + k*59/7, view 2 at 5 + k*59/15 (k = 8 gives 36.47 -> 36; an end point
# of L - 1 would give 35.93 -> 35), both truncated; the last index 64 is clamped to 63.
L64 = ([0, 8, 16, 25, 33, 42, 50, 59],
       [5, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60, 63])
# L = 256: view 1 at k*251/7, view 2 at 5 + k*251/15 (k = 7 gives 122.13; with L - 1: 121.67)
L256 = ([0, 35, 71, 107, 143, 179, 215, 251],
        [5, 21, 38, 55, 71, 88, 105, 122, 138, 155, 172, 189, 205, 222, 239, 255])


@pytest.mark.parametrize("length,expected", [(64, L64), (256, L256)])
def test_global_views_hand_computed(length, expected):
    indices = PretrainViews(PretrainViewsConfig()).temporal_indices(length)
    assert indices[0].tolist() == expected[0]
    assert indices[1].tolist() == expected[1]
