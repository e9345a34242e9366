"""``endofm export`` of a phase model: the temporal graph (windows dynamic) and the backbone
graph beside it, both checked against PyTorch, their metadata read back, nothing written on a
mismatch; ``endofm stream --runtime onnx`` on them decides as PyTorch does."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from endofm.cli.main import main
from endofm.data import write_video
from endofm.deploy import phase as phase_export
from endofm.deploy.export import deploy_graph
from endofm.deploy.metadata import read_metadata
from endofm.deploy.model import load_deploy_model
from endofm.deploy.parity import ParityError
from endofm.tasks.phase.task import load_phase_model
from tests.tiny_inputs import tiny_phase_model

from .conftest import lines, live
from .test_live_phase import PHASES, TOOLS, phase_model

ort = pytest.importorskip("onnxruntime")

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"


@pytest.fixture(scope="module")
def phase_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("phase_export") / "m"
    tiny_phase_model(root)
    return root


@pytest.fixture(scope="module")
def exported_phase(phase_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The causal tiny phase model exported by the command: (its file, what it printed)."""
    out = tmp_path_factory.mktemp("phase_onnx") / "phase.onnx"
    assert main(["export", "--checkpoint", str(phase_dir), "--output", str(out)]) == 0
    return out


def test_export_writes_the_temporal_graph_and_the_backbone_beside_it(exported_phase,
                                                                    phase_dir):
    meta = read_metadata(exported_phase)
    assert meta["task"] == "phase" and meta["input"] == "features"
    assert meta["phases"] == meta["class_names"] == ["idle", "cut", "close"]
    assert meta["tools"] == [] and meta["outputs"] == ["logits", "probabilities"]
    model, saved = load_phase_model(phase_dir)
    assert (meta["in_dim"], meta["causal"]) == (192, True)
    assert meta["receptive_rows"] == model.receptive_rows
    assert (meta["rate"], meta["num_frames"], meta["size"]) == (10.0, 2, 32)
    assert (meta["frame_step"], meta["stride"]) == ("0.05s", "0.1s")
    assert meta["backbone"] == "phase.backbone.onnx"
    assert meta["settings"]["model"] == saved["model"]
    backbone = read_metadata(exported_phase.parent / meta["backbone"])
    assert backbone["task"] == "backbone" and backbone["outputs"] == ["embedding", "tokens"]
    assert (backbone["num_frames"], backbone["height"], backbone["width"]) == (2, 32, 32)
    assert (backbone["frame_step"], backbone["frame_step_fps"]) == (1, pytest.approx(20.0))


def test_the_temporal_graph_takes_any_batch_and_number_of_windows(exported_phase, phase_dir):
    graph = phase_export.PhaseGraph(load_phase_model(phase_dir)[0])
    session = ort.InferenceSession(str(exported_phase), providers=["CPUExecutionProvider"])
    for batch, windows in ((1, 1), (3, 5), (1, 70)):  # traced at [2, 16, D]
        features = torch.randn(batch, windows, 192)
        got = session.run(None, {"features": features.numpy()})
        with torch.inference_mode():
            want = graph(features)
        for g, w in zip(got, want, strict=True):
            assert g.shape == (batch, windows, 3)
            np.testing.assert_allclose(g, w.numpy(), atol=1e-5)


def test_parity_of_both_graphs_on_random_and_real_inputs(phase_dir, make_frames, tmp_path):
    video = write_video(tmp_path / "v.mkv", make_frames(30), fps=25, codec="ffv1")
    report = phase_export.export_phase(phase_dir, tmp_path / "p.onnx", video=video)
    assert [r.clip for r in report.backbone_parity] == ["random", "real"]
    assert [r.clip for r in report.parity] == ["random", "real"]
    real = report.parity[1]
    assert real.decisions + real.ambiguous == 15  # 10 windows/s of 25 fps video: 15 rows
    assert real.differing == 0 and report.parity[0].decisions + report.parity[0].ambiguous == 74
    for result in report.parity + report.backbone_parity:
        assert result.ok and max(result.max_abs_diff.values()) <= 1e-4


def test_a_temporal_graph_that_differs_writes_neither_file(phase_dir, tmp_path, monkeypatch):
    traced = phase_export.export_temporal

    def shifted(model, opset):
        other = copy.deepcopy(model)
        with torch.no_grad():
            other.stages[-1].out.bias += 1.0  # every logit one higher: same softmax
        return traced(other, opset)

    monkeypatch.setattr(phase_export, "export_temporal", shifted)
    out = tmp_path / "p.onnx"
    with pytest.raises(ParityError, match="logits differs"):
        phase_export.export_phase(phase_dir, out)
    assert not out.exists() and not phase_export.backbone_file(out).exists()


def test_an_offline_model_with_tools_exports_and_stream_refuses_it(tmp_path, video):
    folder = phase_model(tmp_path / "offline", causal=False)
    report = phase_export.export_phase(folder, tmp_path / "off.onnx")
    meta = report.metadata
    assert not meta["causal"] and meta["tools"] == list(TOOLS)
    assert meta["outputs"] == ["logits", "probabilities", "tool_probabilities"]
    # 12 rendered rows: the phase of each, and each tool present or not
    assert report.parity[1].decisions + report.parity[1].ambiguous == 12 * (1 + len(TOOLS))
    assert len(meta["phases"]) == len(PHASES)
    with pytest.raises(ValueError, match="offline model"):
        live(report.path, video, tmp_path / "live", runtime="onnx")


def test_stream_on_onnx_runtime_decides_as_pytorch(phase_dir, exported_phase, make_frames,
                                                   tmp_path):
    video = write_video(tmp_path / "v.mkv", make_frames(40), fps=25, codec="ffv1")
    runs = {}
    for runtime, checkpoint in (("torch", phase_dir), ("onnx", exported_phase)):
        live(checkpoint, video, tmp_path / runtime, runtime=runtime, realtime=False).run()
        runs[runtime] = {r["newest_frame"]: r["prediction"] for r in lines(tmp_path / runtime)}
    assert sorted(runs["onnx"]) == sorted(runs["torch"]) == list(range(1, 40, 2))
    for frame, torch_pred in runs["torch"].items():
        onnx_pred = runs["onnx"][frame]
        assert onnx_pred["phase"] == torch_pred["phase"]
        np.testing.assert_allclose(list(onnx_pred["probabilities"].values()),
                                   list(torch_pred["probabilities"].values()), atol=1e-4)


def test_window_settings_cannot_be_changed_at_export(phase_dir, tmp_path, capsys):
    out = tmp_path / "p.onnx"
    assert main(["export", "--checkpoint", str(phase_dir), "--output", str(out),
                 "--size", "64"]) == 1
    assert "--size cannot change them" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(ValueError, match="export_phase"):
        load_deploy_model(phase_dir)


def test_runtime_onnx_given_a_model_folder_names_the_file_it_takes(phase_dir, tmp_path,
                                                                    capsys):
    video = tmp_path / "v.mp4"
    video.touch()
    assert main(["stream", str(video), "--runtime", "onnx", "--checkpoint", str(phase_dir),
                 "--output", str(tmp_path / "live")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is a folder" in err


def test_the_docs_example_runs_both_graphs_without_endofm(exported_phase, phase_dir):
    section = DOC.read_text(encoding="utf-8").split("### A phase model: two graphs", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    check = ("\nprint(sorted(m for m in ('torch', 'endofm') if m in sys.modules))"
             "\nprint(json.dumps(probs.tolist()))")
    out = subprocess.run([sys.executable, "-c", "import sys\n" + code + check],
                         cwd=exported_phase.parent, capture_output=True, text=True,
                         timeout=120, check=True).stdout.splitlines()
    assert out[-2] == "[]"  # neither torch nor endofm was imported
    deploy = load_deploy_model(phase_dir / "backbone", 2, 32)
    windows = np.random.default_rng(0).integers(0, 256, (20, 2, 32, 32, 3), dtype=np.uint8)
    x = (windows / 255.0 - np.array(deploy.mean)) / np.array(deploy.std)
    clips = torch.from_numpy(x.transpose(0, 4, 1, 2, 3).astype(np.float32))
    with torch.inference_mode():
        features = deploy_graph(deploy)(clips)[0]
        want = phase_export.PhaseGraph(load_phase_model(phase_dir)[0])(features[None])[1][0]
    np.testing.assert_allclose(np.array(json.loads(out[-1])), want.numpy(), atol=1e-4)
    assert out[-3] == str([["idle", "cut", "close"][p] for p in want.argmax(1).tolist()])


def test_extract_given_the_temporal_graph_names_the_backbone_beside_it(exported_phase, tmp_path,
                                                                      capsys):
    video = tmp_path / "v.mp4"
    video.touch()
    assert main(["extract", str(video), "--runtime", "onnx", "--checkpoint",
                 str(exported_phase), "--output", str(tmp_path / "feats")]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1
    assert str(exported_phase.with_name(exported_phase.stem + ".backbone.onnx")) in errors[0]
