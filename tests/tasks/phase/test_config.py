"""The phase task's settings are range-checked like every other section's."""

from __future__ import annotations

import pytest

from endofm.config import ConfigError, load_config
from endofm.tasks.phase.config import PhaseConfig


@pytest.mark.parametrize("rate", ["0", "-1", "30.5"])
def test_a_window_rate_outside_0_to_30_per_second_is_refused(rate):
    with pytest.raises(ConfigError, match=rf"features\.rate must be in \(0, 30\], got {rate}"):
        load_config(PhaseConfig, None, [f"features.rate={rate}"])


def test_the_window_rate_may_be_30_per_second():
    assert load_config(PhaseConfig, None, ["features.rate=30"]).features.rate == 30
