"""The PyAV log-bridge guard: which versions get FFmpeg's own log."""

import pytest

from endofm.data.pyav import major_minor, needs_native_log


@pytest.mark.parametrize(("version", "expected"), [
    ("12.0.0", (12, 0)), ("13.1.0", (13, 1)), ("18.0rc1", (18, 0)), ("19", (19, 0))])
def test_major_minor(version, expected):
    assert major_minor(version) == expected


@pytest.mark.parametrize(("version", "native"), [
    ("12.0.0", True), ("13.0.0", True), ("17.9.1", True), ("18.0.0", False), ("18.1.0", False)])
def test_versions_before_18_get_ffmpegs_own_log(version, native):
    assert needs_native_log(version) is native
