"""``--runtime onnx``: extract and predict give what PyTorch gives, through the exported file."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from endofm.cli.main import main
from endofm.deploy.onnx_task import load_onnx_task_model
from endofm.deploy.runtime import choose_providers
from endofm.inference.predict import predict_video
from endofm.inference.task_models import load_task_model

pytest.importorskip("onnxruntime")

FP32 = {"precision": "fp32", "device": "cpu", "num_workers": 0}


def test_extract_features_equal_pytorch(model_dirs, exported, video, tmp_path):
    common = ["--precision", "fp32", "--workers", "0", "--frame-step", "3", "--quiet"]
    assert main(["extract", str(video), "--checkpoint", str(model_dirs["backbone"]),
                 "--output", str(tmp_path / "torch"), *common]) == 0
    assert main(["extract", str(video), "--checkpoint", str(exported["backbone"]), "--output",
                 str(tmp_path / "onnx"), "--runtime", "onnx", *common]) == 0
    want, got = (np.load(tmp_path / d / "clip.npy") for d in ("torch", "onnx"))
    assert got.shape == want.shape and want.shape[0] > 1
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_extract_refuses_what_the_export_fixed(exported, video, tmp_path, capsys):
    assert main(["extract", str(video), "--checkpoint", str(exported["backbone"]), "--output",
                 str(tmp_path / "x"), "--runtime", "onnx", "--num-frames", "8"]) == 1
    assert "exported at --num-frames 4; got 8" in capsys.readouterr().err


@pytest.mark.parametrize("task", ["classification", "segmentation", "detection"])
def test_predict_equals_pytorch(task, model_dirs, exported, video):
    want = predict_video(load_task_model(model_dirs[task]), video, **FP32)
    onnx_model, meta = load_onnx_task_model(exported[task])
    assert meta["task"] == task
    got = predict_video(onnx_model, video, **FP32)
    if task == "classification":
        np.testing.assert_allclose(got.probs, want.probs, atol=1e-5)
        assert (got.score, got.abnormal) == pytest.approx((want.score, want.abnormal))
    elif task == "segmentation":
        np.testing.assert_array_equal(got.frames, want.frames)
        assert (got.masks != want.masks).mean() < 1e-3  # a pixel at a tie may flip
    else:
        assert [f.frame for f in got.frames] == [f.frame for f in want.frames]
        for g, w in zip(got.frames, want.frames, strict=True):
            np.testing.assert_allclose(g.scores, w.scores, atol=1e-5)
            np.testing.assert_allclose(g.boxes, w.boxes, atol=1e-3)
            np.testing.assert_array_equal(g.labels, w.labels)
        assert sum(len(f.scores) for f in got.frames) > 0


def test_predict_command_runs_the_onnx_file(exported, video, tmp_path):
    out = tmp_path / "pred"
    assert main(["predict", "classification", str(video), "--checkpoint",
                 str(exported["classification"]), "--output", str(out), "--runtime", "onnx",
                 "--workers", "0", "--quiet"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["precision"] == "fp32" and not run["errors"]


def test_predict_refuses_another_tasks_export(exported, video, tmp_path, capsys):
    assert main(["predict", "classification", str(video), "--checkpoint",
                 str(exported["segmentation"]), "--output", str(tmp_path / "p"),
                 "--runtime", "onnx"]) == 1
    assert "is an exported segmentation model, not a classification model" in (
        capsys.readouterr().err)


def test_a_missing_onnxruntime_is_one_line(exported, video, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert main(["predict", "classification", str(video), "--checkpoint",
                 str(exported["classification"]), "--output", str(tmp_path / "p"),
                 "--runtime", "onnx"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'endofm[onnx]'" in err[0]


def test_providers_fastest_first_among_those_installed():
    have = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers(have) == have
    assert choose_providers(have, "cpu") == ["CPUExecutionProvider"]
    assert choose_providers(have, "cuda:0") == have
    assert choose_providers(["TensorrtExecutionProvider", *have])[0] == (
        "TensorrtExecutionProvider")
    with pytest.raises(ValueError, match="no TensorrtExecutionProvider here"):
        choose_providers(have, "tensorrt")


def test_a_fine_tuned_directory_exports_its_backbone_alone(model_dirs):
    from endofm.deploy.model import load_deploy_model

    deploy = load_deploy_model(model_dirs["classification"], backbone_only=True)
    assert deploy.task == "backbone" and deploy.extra["embed_dim"] == 96
