"""``finetune phase`` → ``evaluate phase`` → ``predict phase`` end to end on small rendered
procedures, resume, the window-classifier stage 1, and the causal step API."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from endofm.cli.main import main
from endofm.data.phase.synth import ProcedureSpec, synth_procedures
from endofm.inference.phase_predict import PhaseStream, offline_probabilities
from endofm.tasks.phase.task import load_phase_model

SPEC = ProcedureSpec(num_phases=3, alike=(0, 2), phase_s=(4, 6), size=32, fps=5.0)
TINY = ["--config", "tiny", "train.epochs=2", "train.log_every=1", "model.layers=3",
        "model.channels=8", "features.backbone.depth=1", "--quiet"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth_procedures(tmp_path_factory.mktemp("phase"), num_videos=4, seed=3, spec=SPEC)


@pytest.fixture(scope="module")
def run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    assert main(["finetune", "phase", "--data", str(data), "--output", str(out),
                 "model.causal=true", *TINY]) == 0
    return out


@pytest.mark.slow
def test_finetune_writes_a_scored_run(run: Path, data: Path, tmp_path: Path) -> None:
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["num_test_items"] == 2 and metrics["split"] == "test"
    assert 0 <= metrics["accuracy"] <= 1 and "relaxed_jaccard" in metrics
    assert metrics["tool_map"] is not None and len(metrics["per_video"]) == 2
    assert sorted(p.name for p in (run / "features").glob("*.npy")) == [
        f"video0{k}.npy" for k in range(1, 5)]
    # the prediction files written with the test metrics score the same through evaluate
    out = tmp_path / "scores"
    assert main(["evaluate", "phase", "--predictions", str(run / "test" / "predictions"),
                 "--data", str(data), "--output", str(out), "--quiet"]) == 0
    scored = json.loads((out / "metrics.json").read_text())
    for key in ("accuracy", "relaxed_accuracy", "jaccard", "edit", "f1@25"):
        assert scored[key] == pytest.approx(metrics[key])
    # and a fresh evaluation of the checkpoint (features extracted again) agrees too
    out = tmp_path / "checkpoint"
    assert main(["evaluate", "phase", "--checkpoint", str(run / "best"), "--data", str(data),
                 "--output", str(out), "--quiet"]) == 0
    assert json.loads((out / "metrics.json").read_text())["accuracy"] == pytest.approx(
        metrics["accuracy"])


@pytest.mark.slow
def test_rerun_resumes(run: Path, data: Path, capsys) -> None:
    before = (run / "features" / "video01.npy").stat().st_mtime_ns
    loud = [arg for arg in TINY if arg != "--quiet"]  # --quiet would hide the message
    assert main(["finetune", "phase", "--data", str(data), "--output", str(run),
                 "model.causal=true", *loud, "train.progress=false"]) == 0
    assert "resumed from" in capsys.readouterr().err
    assert (run / "features" / "video01.npy").stat().st_mtime_ns == before


@pytest.mark.slow
def test_predict_online_and_offline(run: Path, data: Path, tmp_path: Path) -> None:
    video = data / "videos" / "video04.mp4"
    for mode in ([], ["--online"]):
        out = tmp_path / ("online" if mode else "offline")
        assert main(["predict", "phase", "--checkpoint", str(run / "best"), str(video),
                     "--output", str(out), "--annotations", str(data), *mode,
                     "--quiet"]) == 0
        rows = (out / "video04" / "phases.csv").read_text().splitlines()
        assert rows[0].startswith("time_s," + ("shown_at_s," if mode else "") +
                                  "prob_Preparation")
        assert (out / "video04" / "ribbon.png").stat().st_size > 0
        assert "video04/report.html" in (out / "index.html").read_text()
        durations = (out / "video04" / "durations.csv").read_text().splitlines()
        assert durations[0] == "phase,predicted_s,annotated_s"
        weights = json.loads((out / "run.json").read_text())["weights"]
        read = [run / "best" / "model.safetensors", run / "best/backbone/model.safetensors"]
        assert [w["sha256"] for w in weights] == [
            hashlib.sha256(p.read_bytes()).hexdigest() for p in read]
    # a causal model shows live exactly what it computes offline
    online = [r.split(",")[-8] for r in (tmp_path / "online/video04/phases.csv")
              .read_text().splitlines()[1:]]
    offline = [r.split(",")[-8] for r in (tmp_path / "offline/video04/phases.csv")
               .read_text().splitlines()[1:]]
    assert online == offline


@pytest.mark.slow
def test_best_folder_predicts_on_its_own(run: Path, data: Path, tmp_path: Path) -> None:
    """``RUN/best`` carries its backbone: copied elsewhere, with the run folder and the
    pretrained backbone deleted, it predicts and evaluates as before."""
    pretrained = shutil.copytree(run / "backbone", tmp_path / "stage1")
    out = tmp_path / "run"
    assert main(["finetune", "phase", "--data", str(data), "--output", str(out),
                 "--pretrained", str(pretrained), "model.causal=true", *TINY]) == 0
    video = data / "videos" / "video04.mp4"
    assert main(["predict", "phase", "--checkpoint", str(out / "best"), str(video),
                 "--output", str(tmp_path / "before"), "--quiet"]) == 0
    moved = shutil.copytree(out / "best", tmp_path / "elsewhere" / "model")
    shutil.rmtree(out)
    shutil.rmtree(pretrained)
    assert main(["predict", "phase", "--checkpoint", str(moved), str(video), "--online",
                 "--output", str(tmp_path / "after"), "--quiet"]) == 0
    before = (tmp_path / "before/video04/phases.csv").read_text().splitlines()
    after = (tmp_path / "after/video04/phases.csv").read_text().splitlines()
    assert [r.split(",")[-8] for r in after] == [r.split(",")[-8] for r in before]
    assert main(["evaluate", "phase", "--checkpoint", str(moved), "--data", str(data),
                 "--output", str(tmp_path / "scores"), "--quiet"]) == 0


@pytest.mark.slow
def test_step_api_matches_the_whole_video(run: Path) -> None:
    model, _ = load_phase_model(run / "best")
    features = np.load(run / "features" / "video02.npy")
    whole, _ = offline_probabilities(model, features, torch.device("cpu"))
    stream = PhaseStream(run / "best", device="cpu")
    live = np.stack([stream.step(f).probs for f in features])
    np.testing.assert_allclose(live, whole, atol=1e-5)
    assert stream.step(features[0]).phase in stream.phases


@pytest.mark.slow
def test_window_classifier_stage_one(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["finetune", "phase", "--data", str(data), "--output", str(out),
                 "features.source=finetuned", "features.window.epochs=1",
                 "features.window.windows_per_video=4", *TINY]) == 0
    assert (out / "window" / "best" / "model.safetensors").is_file()
    run_json = json.loads((out / "features" / "run.json").read_text())
    assert run_json["checkpoint"].endswith("window/best")


def test_offline_model_refuses_the_step_api(tmp_path: Path) -> None:
    from endofm.tasks.phase.model import PhaseTCN

    meta = {"phases": ["a", "b"], "features": {"rate": 1.0}}
    with pytest.raises(ValueError, match="offline model"):
        PhaseStream(tmp_path, model=PhaseTCN(4, 2, causal=False), meta=meta)
