"""Classification on the user's own labelled videos, end to end: a manifest with named
classes and a multi-label manifest are fine-tuned, evaluated and used for prediction; class
folders go through the probe."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from endofm.cli.main import main
from endofm.data.video import write_video

pytestmark = pytest.mark.slow
NAMES = ("clipper", "grasper", "hook")
COLOURS = {"clipper": (40, 40, 200), "grasper": (200, 40, 40), "hook": (40, 200, 40)}
TINY = ["--config", "tiny", "--quiet", "train.epochs=1", "train.batch_size=4",
        "data.clips_per_video=1", "data.test_clips=1", "data.num_frames=2",
        "data.frame_step=2", "protocol.selection=val", "protocol.val_fraction=0.2"]


def video(path: Path, colour: tuple[int, int, int], frames: int = 6) -> Path:
    clip = np.zeros((frames, 32, 32, 3), np.uint8)
    clip[:] = colour
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, clip, 10.0)


def test_manifest_with_named_classes_end_to_end(tmp_path, capsys):
    rows = ["path,label,start,end"]
    for i in range(12):
        name = NAMES[i % 3]
        video(tmp_path / "data" / f"case{i}.mp4", COLOURS[name])
        rows += [f"case{i}.mp4,{name},0,0.3", f"case{i}.mp4,{name},0.3,0.6"]
    manifest = tmp_path / "data" / "labels.csv"
    manifest.write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    assert main(["finetune", "classification", "--data", str(manifest), "--format",
                 "manifest", "--output", str(out), *TINY]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split"] == "test"
    assert [c["name"] for c in metrics["classes"]] == list(NAMES)
    assert set(metrics["per_class"]) == set(NAMES) and metrics["class_names"] == list(NAMES)
    assert 0 <= metrics["balanced_accuracy"] <= 1
    splits = json.loads((out / "splits.json").read_text())
    videos = {side: {s.split(" [")[0] for s in splits[side]} for side in splits}
    assert not videos["train"] & videos["test"] and not videos["train"] & videos["selection"]
    assert len(splits["test"]) == 4  # round(0.2 x 12) = 2 videos, both clips of each
    saved = json.loads((out / "best" / "config.json").read_text())
    assert [c["name"] for c in saved["classes"]] == list(NAMES)
    assert saved["num_classes"] == 3 and saved["multi_label"] is False
    with open(out / "test" / "predictions.csv", newline="") as f:
        rows_out = list(csv.DictReader(f))
    assert {r["label_name"] for r in rows_out} <= set(NAMES) and len(rows_out) == 4
    ev = tmp_path / "eval"
    assert main(["evaluate", "classification", "--checkpoint", str(out / "best"), "--data",
                 str(manifest), "--output", str(ev), "--quiet"]) == 0
    again = json.loads((ev / "metrics.json").read_text())
    assert again["accuracy"] == pytest.approx(metrics["accuracy"])
    assert again["class_names"] == list(NAMES)
    pred = tmp_path / "pred"
    assert main(["predict", "classification", "--checkpoint", str(out / "best"),
                 str(tmp_path / "data" / "case0.mp4"), "--output", str(pred), "--quiet",
                 "--frame-step", "2"]) == 0
    assert (pred / "case0" / "timeline.csv").is_file()
    # a num_classes the data contradicts is one clear error
    assert main(["finetune", "classification", "--data", str(manifest), "--output",
                 str(tmp_path / "bad"), *TINY, "model.num_classes=2"]) == 1
    assert "model.num_classes=2 disagrees with the data, which has 3 classes" in \
        capsys.readouterr().err


def test_multi_label_manifest_trains_sigmoids_and_reports_map(tmp_path):
    rows = ["path,label,split"]
    for i in range(10):
        labels = [NAMES[i % 3]] + ([NAMES[(i + 1) % 3]] if i % 2 else [])
        video(tmp_path / f"v{i}.mp4", COLOURS[labels[0]])
        rows.append(f"v{i}.mp4,{'|'.join(labels)},{'test' if i >= 7 else 'train'}")
    manifest = tmp_path / "labels.csv"
    manifest.write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    assert main(["finetune", "classification", "--data", str(manifest), "--output", str(out),
                 *TINY]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["multi_label"] is True and metrics["num_test_items"] == 3
    assert set(metrics["per_class"]) == set(NAMES)
    assert metrics["map"] is None or 0 <= metrics["map"] <= 1
    assert (out / "test" / "per_class_ap.png").is_file()
    assert json.loads((out / "best" / "config.json").read_text())["multi_label"] is True


def test_probe_on_class_folders_names_the_classes(tmp_path):
    for part, count in (("train", 3), ("test", 1)):
        for name in NAMES:
            for k in range(count):
                video(tmp_path / "data" / part / name / f"{name}{k}.mp4", COLOURS[name])
    out = tmp_path / "probe"
    assert main(["probe", "--data", str(tmp_path / "data"), "--format", "folders",
                 "--output", str(out), "--config", "tiny", "--method", "knn", "probe.k=[3]",
                 "data.num_frames=2", "data.frame_step=2", "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["class_names"] == list(NAMES) and metrics["num_test_items"] == 3
    assert metrics["accuracy"] == pytest.approx(1.0)  # one colour per class
