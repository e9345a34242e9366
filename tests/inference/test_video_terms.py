"""Outputs in the video's own terms: its pixels, its frame rate, the model's class names, the
resolved settings; and the folder guard every inference command shares."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from endofm.cli.main import main
from endofm.data import open_video, write_video
from endofm.inference import load_task_model, predict_video
from endofm.inference.encoder import VideoEncoder
from endofm.models import create_model
from tests.tiny_inputs import moving_frames

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "endofm_reference_tiny"
CPU = ["--workers", "0", "--device", "cpu", "--precision", "fp32", "--quiet"]


@pytest.fixture(scope="module")
def full_hd(tmp_path_factory) -> Path:
    """Three 1920x1080 frames at 25 fps: a bright block on a dark background."""
    frames = np.full((3, 1080, 1920, 3), 20, dtype=np.uint8)
    frames[:, 300:700, 900:1500] = (230, 140, 60)
    return write_video(tmp_path_factory.mktemp("hd") / "hd.mp4", frames, fps=25)


@pytest.fixture(scope="module")
def detector(tmp_path_factory) -> Path:
    """A tiny untrained detector without a score floor, so it returns boxes."""
    from endofm.config import load_config, recipe_path
    from endofm.tasks import TASKS
    from endofm.tasks.base import task_config_schema

    cls = TASKS["detection"]
    torch.manual_seed(0)
    task = cls(load_config(task_config_schema(cls), recipe_path("detection", "tiny"),
                           ["model.score_thresh=0.0", "model.min_size=64", "model.max_size=128",
                            "model.detections_per_img=5"]))
    return task.save_model(task.build_model(None), tmp_path_factory.mktemp("det") / "det")


def test_segmentation_of_a_1080p_video_is_in_1080p(task_dirs, full_hd, tmp_path):
    out = tmp_path / "seg"
    assert main(["predict", "segmentation", "--checkpoint", str(task_dirs["segmentation"]),
                 str(full_hd), "--output", str(out), *CPU]) == 0
    masks = sorted((out / "hd" / "masks").iterdir())
    assert len(masks) == 3 and Image.open(masks[0]).size == (1920, 1080)
    overlay = open_video(out / "hd" / "overlay.mp4")
    assert (overlay.width, overlay.height, overlay.num_frames) == (1920, 1080, 3)
    resolved = json.loads((out / "run.json").read_text())["videos"]["hd.mp4"]["resolved"]
    assert (resolved["video_size"], resolved["decoded_size"], resolved["model_input"]) == (
        "1920x1080", "1920x1080", "32x32")


def test_detection_boxes_of_a_1080p_video_are_in_its_pixels(detector, full_hd, tmp_path):
    result = predict_video(detector, full_hd, device="cpu", precision="fp32")
    model = load_task_model(detector)
    frames = torch.from_numpy(open_video(full_hd).read([0, 0, 1])).permute(0, 3, 1, 2)
    small = F.interpolate(frames.float(), size=(64, 113), mode="bilinear", antialias=True)
    clip = small.round().clamp(0, 255).div(255).transpose(0, 1)  # [3, T, 64, 113]
    with torch.no_grad():
        (expected,) = model.model([clip])
    scale = torch.tensor([1920 / 113, 1080 / 64, 1920 / 113, 1080 / 64])
    first = result.frames[0]
    assert first.frame == 0 and len(first.boxes) == 5
    np.testing.assert_allclose(first.boxes, (expected["boxes"] * scale).numpy(), rtol=1e-4,
                               atol=1e-2)
    assert first.boxes[:, 2].max() > 113  # beyond the detector's input: the video's pixels
    out = tmp_path / "det"
    assert main(["predict", "detection", "--checkpoint", str(detector), str(full_hd),
                 "--output", str(out), *CPU]) == 0
    coco = json.loads((out / "hd" / "detections.json").read_text())
    assert {(im["width"], im["height"]) for im in coco["images"]} == {(1920, 1080)}
    assert [c["name"] for c in coco["categories"]] == ["adenomatous", "hyperplastic"]
    overlay = open_video(out / "hd" / "overlay.mp4")
    assert (overlay.width, overlay.height) == (1920, 1080)


def test_a_frame_folder_at_fps_25_has_the_timestamps_of_the_same_video(tiny_backbone_dir,
                                                                       tmp_path):
    frames = moving_frames(40)
    video = write_video(tmp_path / "in" / "clip.mp4", frames, fps=25)
    folder = tmp_path / "in" / "clip_frames"
    folder.mkdir()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{i:04d}.png")
    rows = {}
    for name, path, extra in (("video", video, []), ("folder", folder, ["--fps", "25"]),
                              ("default", folder, [])):
        out = tmp_path / name
        assert main(["extract", "--checkpoint", str(tiny_backbone_dir), str(path), "--output",
                     str(out), "--num-frames", "4", *CPU, *extra]) == 0
        with open(out / "index.csv", newline="") as f:
            rows[name] = [(r["first_frame"], r["last_frame"], r["start_s"], r["end_s"])
                          for r in csv.DictReader(f)]
    assert rows["folder"] == rows["video"]  # default step: 32 frames at 30 fps, rescaled
    assert rows["default"] != rows["video"]  # a folder without --fps plays at 30 fps


def test_a_manifest_fps_column_sets_its_frame_folder_rate(tiny_backbone_dir, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(moving_frames(20)):
        Image.fromarray(frame).save(folder / f"{i:04d}.png")
    (tmp_path / "list.csv").write_text("path,fps\nframes,10\n")
    out = tmp_path / "out"
    assert main(["extract", "--checkpoint", str(tiny_backbone_dir), str(tmp_path / "list.csv"),
                 "--output", str(out), "--num-frames", "4", "--frame-step", "1", *CPU]) == 0
    with open(out / "index.csv", newline="") as f:
        second = list(csv.DictReader(f))[1]
    assert (second["first_frame"], float(second["start_s"])) == ("4", 0.4)


@pytest.mark.parametrize("command", ["extract", "attention"])
def test_num_heads_reads_the_released_tiny_backbone(command, videos, tmp_path):
    ckpt = ASSETS / "endo_fm_tiny.pth"
    out = tmp_path / "out"
    video = videos / "sub" / "b.mkv"
    assert main([command, "--checkpoint", str(ckpt), str(video), "--output", str(out),
                 "--num-heads", "4", "--size", "32", "--frame-step", "2", *CPU]) == 0
    if command == "attention":
        assert np.load(out / "b" / "attention.npy").shape[2] == 4  # [windows, T, heads, h, w]
        return
    model = create_model(pretrained=str(ckpt), num_heads=4).eval()
    encoder = VideoEncoder(model, 4, 2, size=32, device="cpu", precision="fp32")
    np.testing.assert_allclose(np.load(out / "b.npy"), encoder.encode(video)[0], atol=1e-5)


def test_run_json_and_reports_hold_resolved_settings(task_dirs, videos, tmp_path):
    out = tmp_path / "out"
    assert main(["predict", "classification", "--checkpoint", str(task_dirs["classification"]),
                 str(videos / "sub"), "--output", str(out), *CPU]) == 0
    run = json.loads((out / "run.json").read_text())
    assert None not in run["settings"].values()
    assert run["settings"]["frame_step"] == "32 frames at 30 fps, rescaled to each video"
    resolved = run["videos"]["b.mkv"]["resolved"]  # 10 fps: 32 frames at 30 fps → 11 frames
    assert (resolved["frame_step_frames"], resolved["stride_frames"]) == (11, 44)
    assert resolved["stride_s"] == pytest.approx(4.4)
    page = (out / "b" / "report.html").read_text()
    assert "None" not in page and "frame_step_frames" in page and "polyp" not in page
    with open(out / "b" / "timeline.csv", newline="") as f:
        assert list(csv.DictReader(f))[0].keys() >= {"prob_normal", "prob_abnormal"}


def test_class_names_come_from_the_saved_model(task_dirs, videos, tmp_path):
    """A model that records its class names gets them everywhere (segmentation: area.csv
    columns and the summary), not the public datasets' defaults."""
    import shutil

    model = tmp_path / "seg"
    shutil.copytree(task_dirs["segmentation"], model)
    config = json.loads((model / "config.json").read_text())
    classes = [{"index": i, "id": i, "name": n} for i, n in enumerate(["bg", "tool"])]
    (model / "config.json").write_text(json.dumps(config | {"classes": classes}))
    out = tmp_path / "out"
    assert main(["predict", "segmentation", "--checkpoint", str(model), str(videos / "sub"),
                 "--output", str(out), *CPU]) == 0
    header = (out / "b" / "area.csv").read_text().splitlines()[0]
    assert header == "frame,time_s,tool_fraction"
    row = json.loads((out / "run.json").read_text())["videos"]["b.mkv"]
    assert "frames with tool" in row and not [k for k in row if "polyp" in k]
    # the background need not be class 0: config.json names it
    classes = [{"index": i, "id": i, "name": n} for i, n in enumerate(["tool", "bg"])]
    (model / "config.json").write_text(json.dumps(config | {"classes": classes,
                                                            "background": 1}))
    assert main(["predict", "segmentation", "--checkpoint", str(model), str(videos / "sub"),
                 "--output", str(tmp_path / "again"), *CPU]) == 0
    assert (tmp_path / "again" / "b" / "area.csv").read_text().splitlines()[0] == \
        "frame,time_s,tool_fraction"


def test_attention_writes_a_report_and_an_index(tiny_backbone_dir, videos, tmp_path):
    out = tmp_path / "att"
    assert main(["attention", "--checkpoint", str(tiny_backbone_dir), str(videos), "--output",
                 str(out), "--frame-step", "2", *CPU]) == 0
    index = (out / "index.html").read_text()
    assert "a/report.html" in index and "sub/b/report.html" in index
    page = (out / "sub" / "b" / "report.html").read_text()
    assert "sheets/window_00000.png" in page and "attention.mp4" in page
    assert json.loads((out / "run.json").read_text())["command"] == "attention"


@pytest.mark.parametrize("command", ["predict", "attention"])
def test_a_rerun_skips_finished_videos_and_refuses_other_settings(command, task_dirs,
                                                                  tiny_backbone_dir, videos,
                                                                  tmp_path, capsys):
    head = (["predict", "segmentation", "--checkpoint", str(task_dirs["segmentation"])]
            if command == "predict" else ["attention", "--checkpoint", str(tiny_backbone_dir)])
    out = tmp_path / "out"
    args = [*head, str(videos), "--output", str(out), "--frame-step", "2", *CPU]
    assert main(args) == 0
    report = out / "a" / "report.html"
    before = report.stat().st_mtime_ns
    (out / "sub" / "b" / "report.html").unlink()  # as if the run had stopped in b.mkv
    assert main(args) == 0
    assert report.stat().st_mtime_ns == before and (out / "sub" / "b" / "report.html").is_file()
    capsys.readouterr()
    assert main([*args[:-len(CPU)], "--frame-step", "3", *CPU]) == 1
    err = capsys.readouterr().err
    assert "other settings (frame_step: '2' -> '3')" in err and err.count("\n") == 1


def test_a_video_whose_run_failed_is_run_again(tiny_backbone_dir, task_dirs, videos, tmp_path):
    """A re-run does not take a recorded error for done (extract and predict)."""
    data = write_video(tmp_path / "full.mkv", moving_frames(40), fps=24).read_bytes()
    cut = videos / "cut.mkv"
    cut.write_bytes(data[: len(data) // 3])
    for head in (["extract", "--checkpoint", str(tiny_backbone_dir), "--num-frames", "4"],
                 ["predict", "segmentation", "--checkpoint", str(task_dirs["segmentation"])]):
        out = tmp_path / head[0]
        args = [*head, str(videos), "--output", str(out), "--frame-step", "2", *CPU]
        cut.write_bytes(data[: len(data) // 3])
        assert main(args) == 1
        assert [e["path"] for e in json.loads((out / "run.json").read_text())["errors"]] == [
            str(cut)]
        cut.write_bytes(data)  # repaired
        assert main(args) == 0
        assert json.loads((out / "run.json").read_text())["errors"] == []


def test_another_commands_folder_is_refused(tiny_backbone_dir, videos, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["extract", "--checkpoint", str(tiny_backbone_dir), str(videos / "a.mp4"),
                 "--output", str(out), *CPU]) == 0
    capsys.readouterr()
    assert main(["attention", "--checkpoint", str(tiny_backbone_dir), str(videos / "a.mp4"),
                 "--output", str(out), *CPU]) == 1
    assert "holds the outputs of `endofm extract`, not `endofm attention`" in \
        capsys.readouterr().err


def test_quiet_environment_silences_extract(tiny_backbone_dir, videos, tmp_path, monkeypatch,
                                            capsys):
    monkeypatch.setenv("ENDOFM_QUIET", "1")
    monkeypatch.setenv("ENDOFM_PROGRESS_SECONDS", "0")
    args = [a for a in CPU if a != "--quiet"]
    assert main(["extract", "--checkpoint", str(tiny_backbone_dir), str(videos), "--output",
                 str(tmp_path / "out"), *args]) == 0
    assert capsys.readouterr().err == ""
    monkeypatch.delenv("ENDOFM_QUIET")
    assert main(["extract", "--checkpoint", str(tiny_backbone_dir), str(videos), "--output",
                 str(tmp_path / "loud"), *args]) == 0
    assert "videos: 2/2" in capsys.readouterr().err
