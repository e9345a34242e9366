"""``endofm export``: every task's graph matches PyTorch at any batch size, its metadata reads
back, a mismatch fails loudly and a missing onnxruntime is one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from endofm.cli import export as export_cli
from endofm.cli.main import main
from endofm.deploy import export as export_module
from endofm.deploy.graphs import DetectorGraph
from endofm.deploy.metadata import read_metadata
from endofm.deploy.model import load_deploy_model
from endofm.deploy.parity import ParityError, compare_argmax, compare_detections, compare_sign

ort = pytest.importorskip("onnxruntime")

TASKS = ("backbone", "classification", "segmentation", "detection")


@pytest.mark.parametrize("task", TASKS)
def test_exported_graph_equals_pytorch_at_any_batch_size(task, model_dirs, exported):
    deploy = load_deploy_model(model_dirs[task])
    module = export_module.deploy_graph(deploy)
    session = ort.InferenceSession(str(exported[task]), providers=["CPUExecutionProvider"])
    for batch in (1, 3):  # exported with a batch of 2: the dimension is dynamic
        clips = torch.randn(batch, 3, deploy.num_frames, deploy.height, deploy.width)
        got = session.run(None, {"clip": clips.numpy()})
        with torch.inference_mode():
            want = module(clips)
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert g.shape == tuple(w.shape)
            np.testing.assert_allclose(g, w.numpy(), atol=1e-4)


def test_metadata_reads_back_what_a_runtime_needs(model_dirs, exported):
    clf = read_metadata(exported["classification"])
    assert clf["task"] == "classification"
    assert (clf["num_frames"], clf["height"], clf["width"]) == (4, 32, 32)
    assert (clf["frame_step"], clf["frame_step_fps"]) == (32, 30.0)
    assert clf["mean"] == pytest.approx([0.45] * 3) and clf["std"] == pytest.approx([0.225] * 3)
    assert clf["class_names"] == ["normal", "abnormal"] and clf["threshold"] == 0.5
    assert clf["outputs"] == ["logits", "probabilities"] and clf["opset"] == 18
    seg = read_metadata(exported["segmentation"])
    assert seg["class_names"] == ["background", "polyp"] and seg["frame_step"] == 1
    assert seg["mean"] == pytest.approx([0.485, 0.456, 0.406])
    det = read_metadata(exported["detection"])
    assert det["head"] == "fcos" and det["outputs"] == ["cls_logits", "bbox_regression",
                                                        "bbox_ctrness"]
    assert det["class_names"] == ["adenomatous", "hyperplastic"]
    assert (det["height"], det["width"]) == (64, 64) and det["levels"] == [[8, 8], [4, 4],
                                                                            [2, 2], [1, 1]]
    assert "NMS" in det["outside_graph"]
    assert read_metadata(exported["backbone"])["outputs"] == ["embedding", "tokens"]


def test_export_at_another_frame_count_and_size(model_dirs, tmp_path, capsys):
    out = tmp_path / "clf.onnx"
    assert main(["export", "--checkpoint", str(model_dirs["classification"]), "--output",
                 str(out), "--num-frames", "2", "--size", "48"]) == 0
    meta = read_metadata(out)
    assert (meta["num_frames"], meta["height"], meta["width"]) == (2, 48, 48)
    assert meta["settings"]["data"]["crop_size"] == 48
    printed = capsys.readouterr().out
    assert "parity: random clip" in printed and "parity: rendered clip" in printed


def test_real_clip_comes_from_the_video(model_dirs, video, tmp_path):
    report = export_module.export_onnx(load_deploy_model(model_dirs["segmentation"]),
                                       tmp_path / "seg.onnx", video=video)
    assert [r.clip for r in report.parity] == ["random", "real"]
    assert report.parity[1].decisions == 4 * 32 * 32 - report.parity[1].ambiguous


def test_a_graph_that_differs_from_pytorch_fails_and_writes_nothing(model_dirs, tmp_path,
                                                                    monkeypatch):
    deploy = load_deploy_model(model_dirs["classification"])
    real_export = export_module.export_graph

    def export_other_weights(d, opset):
        other = load_deploy_model(model_dirs["classification"])
        with torch.no_grad():
            other.model.linear.bias += 0.01
        return real_export(other, opset)

    monkeypatch.setattr(export_module, "export_graph", export_other_weights)
    out = tmp_path / "bad.onnx"
    with pytest.raises(ParityError, match="logits differs by 0.01"):
        export_module.export_onnx(deploy, out)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_every_decision_is_compared(export_reports):
    """Each task's decisions on both clips (the detector's threshold is below its untrained
    scores, so its boxes count)."""
    for task in ("classification", "segmentation", "detection"):
        parity = export_reports[task].parity
        assert [r.clip for r in parity] == ["random", "rendered"]
        assert all(r.decisions > 0 and r.differing == 0 and r.ok for r in parity), task
    assert export_reports["detection"].metadata["threshold"] == 0.01


def test_argmax_decisions_leave_near_ties_out():
    ref = torch.tensor([[0.0, 1.0], [0.5, 0.50001], [2.0, 0.0]])
    got = torch.tensor([[0.0, 1.0], [0.50002, 0.5], [0.0, 2.0]])
    assert compare_argmax(ref, got, 1, 1e-4) == (2, 1, 1)


def test_multi_label_decisions_are_per_class_signs():
    ref = torch.tensor([[1.0, -1.0, 0.00001]])
    assert compare_sign(ref, torch.tensor([[1.0, 0.5, -0.00001]]), 1e-4) == (2, 1, 1)


def test_a_missing_or_extra_box_is_a_differing_decision():
    box = {"boxes": torch.tensor([[0.0, 0, 10, 10]]), "scores": torch.tensor([0.9]),
           "labels": torch.tensor([1])}
    none = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0),
            "labels": torch.zeros(0, dtype=torch.long)}
    assert compare_detections([box], [box], 0.5, 1e-4) == (1, 0, 0)
    assert compare_detections([box], [none], 0.5, 1e-4) == (1, 0, 1)
    assert compare_detections([none], [box], 0.5, 1e-4) == (0, 0, 1)
    moved = box | {"boxes": torch.tensor([[2.0, 0, 12, 10]])}
    assert compare_detections([box], [moved], 0.5, 1e-4)[2] == 2


def test_faster_rcnn_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="NMS inside the graph"):
        DetectorGraph(None, "faster_rcnn")


def test_cli_opset_default_is_the_library_one():
    assert export_cli.DEFAULT_OPSET == export_module.DEFAULT_OPSET
