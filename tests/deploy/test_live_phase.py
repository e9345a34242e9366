"""``endofm stream`` with a causal phase model: decisions on the training's windows only, each
what ``predict phase --online`` shows for that window, never changed by later frames; an
offline model refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from endofm.config import from_dict
from endofm.data import write_video
from endofm.deploy.live import open_live_run
from endofm.inference.phase_predict import PhaseStream, online_probabilities
from endofm.models import create_model, save_pretrained
from endofm.tasks.phase.config import PhaseConfig
from endofm.tasks.phase.model import PhaseTCN
from endofm.tasks.phase.task import BACKBONE_DIR, save_phase_model

from .conftest import TINY, diverging_runs, lines, live

PHASES = ("Preparation", "Dissection", "Closing")
TOOLS = ("Grasper", "Hook")


def phase_model(folder: Path, causal: bool) -> Path:
    """An untrained tiny phase model folder: 5 windows per second of 4 frames at 32 px."""
    torch.manual_seed(0)
    backbone = create_model("endofm_vit_tiny_patch16", **TINY)
    cfg = from_dict(PhaseConfig, {"features": {"rate": 5.0, "num_frames": 4, "size": 32},
                                  "model": {"causal": causal, "layers": 3, "channels": 8}})
    tcn = PhaseTCN(backbone.embed_dim, len(PHASES), cfg.model.stages, cfg.model.layers,
                   cfg.model.channels, causal, 0.0, len(TOOLS))
    save_pretrained(backbone, folder / BACKBONE_DIR)
    return save_phase_model(tcn, cfg, PHASES, TOOLS, "segments", folder)


@pytest.fixture(scope="module")
def causal_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return phase_model(tmp_path_factory.mktemp("phase_live"), causal=True)


def decisions(checkpoint: Path, video: Path, out: Path) -> dict[int, dict]:
    live(checkpoint, video, out, realtime=False).run()
    return {r["newest_frame"]: r for r in lines(out)}


def test_decisions_are_the_online_prediction_of_the_training_windows(causal_model, make_frames,
                                                                     tmp_path):
    video = write_video(tmp_path / "v.mkv", make_frames(40), fps=25, codec="ffv1")
    live = decisions(causal_model, video, tmp_path / "live")
    # 5 windows per second at 25 fps: a window every 5 frames, complete at its 4th frame
    assert sorted(live) == list(range(3, 40, 5))
    first = live[3]
    assert set(first["prediction"]) == {"phase", "probabilities", "tools"}
    assert list(first["prediction"]["probabilities"]) == list(PHASES)
    assert sum(first["prediction"]["probabilities"].values()) == pytest.approx(1, abs=1e-4)
    assert not first["partial"]
    stream = PhaseStream(causal_model, device="cpu", precision="fp32")
    features, _ = stream.encoder.encode(video)
    probs, _ = online_probabilities(stream, features)
    shown = np.array([list(live[k]["prediction"]["probabilities"].values())
                      for k in sorted(live)])
    np.testing.assert_allclose(shown, probs[:len(shown)], atol=1e-4)
    assert [live[k]["prediction"]["phase"] for k in sorted(live)] == [
        PHASES[i] for i in probs[:len(shown)].argmax(1)]


def test_changing_future_frames_changes_nothing_already_decided(causal_model, make_frames,
                                                                tmp_path):
    runs = diverging_runs(causal_model, make_frames(40), tmp_path, realtime=False)
    assert sorted(runs[0]) == sorted(runs[1])
    before = [i for i in runs[0] if i < 20]
    assert len(before) == 4
    assert all(runs[0][i]["prediction"] == runs[1][i]["prediction"] for i in before)
    assert any(runs[0][i]["prediction"] != runs[1][i]["prediction"]
               for i in runs[0] if i >= 20)


def test_an_offline_model_is_refused(tmp_path, video):
    offline = phase_model(tmp_path / "offline", causal=False)
    with pytest.raises(ValueError, match="offline model") as info:
        open_live_run(offline, str(video), tmp_path / "live", device="cpu")
    assert "\n" not in str(info.value)
