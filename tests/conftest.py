"""Shared fixtures: the built-in synthetic sample data, rendered once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from endofm.data.synth import synthesize


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``synthesize(..., seed=0)``: ``{"root", "videos", "polypdiag", "cvc", "kumc"}`` paths."""
    return synthesize(tmp_path_factory.mktemp("sample_data"), seed=0)
