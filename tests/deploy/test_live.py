"""``endofm stream``: every decision recorded, causal windows, drops when the model is slow,
real-time pacing, a clean end on SIGINT, each task and both runtimes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from endofm.data import open_video, write_video
from endofm.deploy.live import WindowBuffer
from endofm.deploy.live_source import SourceFrame

from .conftest import diverging_runs, lines, live

SRC = Path(__file__).resolve().parents[2] / "src"


def test_every_decision_is_recorded_with_its_overlay(model_dirs, video, tmp_path):
    out = tmp_path / "live"
    report = live(model_dirs["classification"], video, out, realtime=False, overlay=True).run()
    records = lines(out)
    assert report.frames == 40 and len(records) == report.decisions > 0
    assert report.decisions + report.dropped == report.frames
    newest = [r["newest_frame"] for r in records]
    assert newest == sorted(set(newest)) and all(r["frame"] == r["newest_frame"]
                                                 for r in records)
    first = records[0]
    assert set(first) == {"frame", "frame_time", "newest_frame", "wall_time", "latency_ms",
                          "partial", "prediction"}
    assert first["partial"] and set(first["prediction"]["probabilities"]) == {"normal",
                                                                              "abnormal"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["decisions"] == len(records) and summary["dropped"] == report.dropped
    assert set(summary["latency_ms"]) == {"p50", "p95", "p99", "max"}
    assert summary["latency_ms"]["max"] == pytest.approx(max(r["latency_ms"] for r in records),
                                                         abs=1e-2)
    assert open_video(out / "overlay.mp4").num_frames == 40
    with pytest.raises(FileExistsError, match="already holds"):
        live(model_dirs["classification"], video, out)


def test_windows_hold_only_past_frames_at_the_frame_step():
    class Task:
        num_frames, frame_step, target = 3, 2, 2

    buffer = WindowBuffer(Task())
    windows = [buffer.add(SourceFrame(i, i / 10, None, 0.0), torch.full((1, 1, 1), i))
               for i in range(7)]
    assert windows[6].frames.flatten().tolist() == [2, 4, 6] and not windows[6].partial
    assert windows[1].frames.flatten().tolist() == [0, 0, 1] and windows[1].partial
    assert windows[4].frames.flatten().tolist() == [0, 2, 4] and not windows[4].partial


def test_changing_future_frames_changes_nothing_already_decided(model_dirs, make_frames,
                                                                tmp_path):
    """Two lossless videos equal up to frame 20: every frame both runs decided before it has
    the same decision; after it, decisions differ (the model sees the frames)."""
    runs = [{k: r["prediction"] for k, r in run.items()}
            for run in diverging_runs(model_dirs["classification"], make_frames(30), tmp_path)]
    common = sorted(set(runs[0]) & set(runs[1]))
    before = [i for i in common if i < 20]
    assert len(before) >= 5
    assert all(runs[0][i] == runs[1][i] for i in before)
    assert any(runs[0][i] != runs[1][i] for i in common if i >= 20)


def test_a_slow_model_drops_frames_and_latency_stays_bounded(model_dirs, video, tmp_path):
    run = live(model_dirs["classification"], video, tmp_path / "slow", realtime=True)
    decide = run.task.decide

    def slow(window):
        time.sleep(0.1)  # 2.5 frame intervals at 25 fps
        return decide(window)

    run.task.decide = slow
    report = run.run()
    assert report.dropped > 0 and report.decisions + report.dropped == report.frames == 40
    assert report.decisions == len(lines(tmp_path / "slow"))
    # a window waits for at most one model call before its own: never a queue of them
    assert report.latency_ms["p99"] < 600


def test_an_unpaced_file_waits_for_a_slow_model_and_drops_nothing(model_dirs, video, tmp_path):
    run = live(model_dirs["classification"], video, tmp_path / "unpaced", realtime=False)
    decide = run.task.decide

    def slow(window):
        time.sleep(0.05)
        return decide(window)

    run.task.decide = slow
    report = run.run()
    assert report.dropped == 0 and report.decisions == report.frames == 40
    assert [r["newest_frame"] for r in lines(tmp_path / "unpaced")] == list(range(40))


def test_bf16_streams_the_cast_copy_with_the_fp32_decisions(model_dirs, video, tmp_path):
    from endofm.runner.precision import CastInference

    runs = {p: live(model_dirs["classification"], video, tmp_path / p, realtime=False,
                    precision=p) for p in ("fp32", "bf16")}
    call = runs["bf16"].task.predictor.call_model
    assert isinstance(call, CastInference)
    assert {p.dtype for p in call.parameters()} == {torch.bfloat16}
    assert runs["fp32"].task.predictor.call_model is runs["fp32"].task.predictor.model
    decided = {}
    for precision, run in runs.items():
        run.run()
        decided[precision] = {r["newest_frame"]: r["prediction"]
                              for r in lines(tmp_path / precision)}
    assert decided["bf16"].keys() == decided["fp32"].keys() and decided["bf16"]
    for frame, want in decided["fp32"].items():
        assert decided["bf16"][frame]["score"] == pytest.approx(want["score"], abs=0.02)


def test_realtime_follows_the_frame_rate_unpaced_runs_ahead(model_dirs, make_frames, tmp_path):
    path = write_video(tmp_path / "slow.mp4", make_frames(30), fps=10)  # 3 s of video
    paced = live(model_dirs["classification"], path, tmp_path / "paced", realtime=True).run()
    fast = live(model_dirs["classification"], path, tmp_path / "fast", realtime=False).run()
    assert paced.elapsed_s >= 2.9 and fast.elapsed_s < paced.elapsed_s
    for folder, ahead in (("paced", False), ("fast", True)):
        records = lines(tmp_path / folder)
        offsets = [(r["wall_time"] - records[0]["wall_time"]) - r["frame_time"]
                   for r in records]
        if ahead:  # decisions made before their frame would have been shown
            assert min(offsets) < -0.5
        else:  # never before the frame is due
            assert min(offsets) > -0.05


@pytest.mark.parametrize("task", ["segmentation", "detection"])
def test_segmentation_and_detection_decide_live(task, model_dirs, video, tmp_path):
    report = live(model_dirs[task], video, tmp_path / task, realtime=False).run()
    records = lines(tmp_path / task)
    assert report.decisions == len(records) > 0
    if task == "segmentation":
        assert 0.0 <= records[-1]["prediction"]["area"] <= 1.0
        assert all(r["frame"] == r["newest_frame"] for r in records)
    else:  # boxes of the window's middle frame (3 frames, stride 1: one frame back)
        assert all(r["frame"] == max(0, r["newest_frame"] - 1) for r in records)
        assert records[-1]["prediction"]["scores"]  # threshold 0.01: the untrained boxes


def test_onnx_runtime_decides_as_pytorch(model_dirs, exported, video, tmp_path):
    pytest.importorskip("onnxruntime")
    live(model_dirs["classification"], video, tmp_path / "torch", realtime=False).run()
    live(exported["classification"], video, tmp_path / "onnx", runtime="onnx",
         realtime=False).run()
    torch_run = {r["newest_frame"]: r["prediction"] for r in lines(tmp_path / "torch")}
    onnx_run = {r["newest_frame"]: r["prediction"] for r in lines(tmp_path / "onnx")}
    common = sorted(set(torch_run) & set(onnx_run))
    assert common
    for i in common:
        assert onnx_run[i]["class"] == torch_run[i]["class"]
        assert onnx_run[i]["score"] == pytest.approx(torch_run[i]["score"], abs=1e-5)
    summary = json.loads((tmp_path / "onnx" / "summary.json").read_text())
    assert summary["runtime"] == "onnx" and summary["task"] == "classification"


def test_sigint_ends_the_run_cleanly_with_its_summary(model_dirs, make_frames, tmp_path):
    video = write_video(tmp_path / "long.mp4", make_frames(400), fps=25)  # 16 s
    out = tmp_path / "live"
    env = os.environ | {"PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-m", "endofm.cli.main", "stream", str(video),
                             "--checkpoint", str(model_dirs["classification"]), "--output",
                             str(out), "--precision", "fp32"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 150
    decisions = out / "decisions.jsonl"
    while not (decisions.is_file() and decisions.read_text().count("\n") >= 3):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] and summary["frames"] < 400
    assert summary["decisions"] == len(lines(out)) >= 3
    assert "interrupted" in stdout and "latency ms: p50" in stdout
    assert np.isfinite(summary["latency_ms"]["p99"])


def test_the_command_paces_files_unless_told_not_to():
    from endofm.cli.main import build_parser

    argv = ["stream", "v.mp4", "--checkpoint", "m", "--output", "o"]
    parser = build_parser()
    assert parser.parse_args(argv).realtime is True
    assert parser.parse_args([*argv, "--unpaced"]).realtime is False
