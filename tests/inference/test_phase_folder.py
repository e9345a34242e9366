"""``endofm predict phase``'s output folder is guarded as every ``predict`` folder: the
settings are recorded, a re-run with other ones is refused, finished videos are skipped and
failed ones run again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from endofm.cli.main import main
from endofm.data import write_video
from tests.tiny_inputs import moving_frames, tiny_phase_model


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_phase_model(tmp_path_factory.mktemp("phase_model"))


def predict(model: Path, videos: Path, out: Path, *extra: str) -> int:
    return main(["--quiet", "predict", "phase", "--checkpoint", str(model), str(videos),
                 "--output", str(out), "--device", "cpu", "--workers", "0", *extra])


def test_settings_are_recorded_and_other_ones_refused(model, tmp_path, capsys):
    write_video(tmp_path / "in" / "a.mp4", moving_frames(12, 32, 32), fps=10)
    out = tmp_path / "out"
    assert predict(model, tmp_path / "in", out) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["command"] == "predict phase" and run["task"] == "phase"
    assert run["settings"] == {"checkpoint": str(model), "online": False, "annotations": None}
    assert run["runtime"]["workers"] == 0 and len(run["weights"]) == 2  # model, backbone
    capsys.readouterr()
    assert predict(model, tmp_path / "in", out, "--online") == 1
    err = capsys.readouterr().err
    assert "other settings (online: False -> True)" in err and err.count("\n") == 1


def test_finished_videos_are_skipped_and_failed_ones_run_again(model, tmp_path):
    videos = tmp_path / "in"
    write_video(videos / "a.mp4", moving_frames(12, 32, 32), fps=10)
    (videos / "b.mp4").write_bytes(b"not a video")
    out = tmp_path / "out"
    assert predict(model, videos, out) == 1  # b failed
    run = json.loads((out / "run.json").read_text())
    assert list(run["videos"]) == ["a.mp4"] and [Path(e["path"]).name for e in run["errors"]] \
        == ["b.mp4"]
    done = (out / "a" / "phases.csv").stat().st_mtime_ns
    write_video(videos / "b.mp4", moving_frames(12, 32, 32, seed=1), fps=10)
    assert predict(model, videos, out) == 0
    run = json.loads((out / "run.json").read_text())
    assert sorted(run["videos"]) == ["a.mp4", "b.mp4"] and run["errors"] == []
    assert (out / "a" / "phases.csv").stat().st_mtime_ns == done  # not run again
    assert (out / "b" / "phases.csv").is_file()
