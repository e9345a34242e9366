"""Shared fixtures: the built-in synthetic sample data, rendered once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from endofm.data.synth import synthesize


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``synthesize(..., seed=0)``: ``{"root", "videos", "polypdiag", "cvc", "kumc"}`` paths."""
    return synthesize(tmp_path_factory.mktemp("sample_data"), seed=0)


@pytest.fixture(scope="session")
def tiny_pretrained(sample_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The teacher backbone of ``endofm pretrain`` with the packaged tiny recipe on the sample
    videos (an endofm model directory)."""
    from endofm.config import load_config, recipe_path
    from endofm.ssl import PretrainConfig, pretrain

    config = recipe_path("pretrain", "tiny")
    out = tmp_path_factory.mktemp("tiny_pretrain")
    pretrain(load_config(PretrainConfig, config, ["train.progress=false", "train.device=cpu"]),
             sample_data["videos"], out)
    return out / "backbone"
