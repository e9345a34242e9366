"""``endofm data inspect --format manifest|folders``: counts per class and split, bad rows."""

from __future__ import annotations

import json

from endofm.cli.main import main
from endofm.data.inspect import inspect_dataset

from .conftest import COLOURS, tiny_video


def test_manifest_counts_per_class_and_split_and_lists_bad_rows(tmp_path, capsys):
    for i in range(4):
        tiny_video(tmp_path / f"v{i}.mp4", COLOURS["hook"], frames=6 + i)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    path = tmp_path / "labels.csv"
    path.write_text("path,label,split\nv0.mp4,hook,train\nv1.mp4,grasper,train\n"
                    "v2.mp4,hook,test\nv3.mp4,hook,\nbroken.mp4,hook,train\n"
                    "gone.mp4,hook,train\n")
    summary = inspect_dataset(path, "manifest")
    assert summary["format"] == "manifest"
    assert summary["label_counts"] == {"grasper": 1, "hook": 3}
    assert summary["splits"]["train"]["label_counts"] == {"grasper": 1, "hook": 1}
    assert summary["splits"]["test"]["num_videos"] == 1
    assert summary["splits"]["unassigned"]["num_videos"] == 1
    assert summary["num_videos"] == 4 and summary["num_frames"] == 6 + 7 + 8 + 9
    assert summary["frames_per_video"] == {"min": 6, "median": 7.5, "max": 9}
    assert [c["name"] for c in summary["classes"]] == ["grasper", "hook"]
    paths = [e["path"] for e in summary["errors"]]
    assert f"{path}:7" in paths and str(broken) in paths and len(paths) == 2
    assert main(["data", "inspect", str(path), "--json"]) == 0  # detected: a manifest file
    printed = json.loads(capsys.readouterr().out)
    assert printed["label_counts"] == summary["label_counts"]
    assert main(["data", "inspect", str(path)]) == 0
    text = capsys.readouterr().out
    assert "train:" in text and "grasper: 1, hook: 1" in text and "gone.mp4 does not exist" in text


def test_folders_inspect_names_stray_files(tmp_path):
    tiny_video(tmp_path / "train" / "hook" / "a.mp4", COLOURS["hook"])
    tiny_video(tmp_path / "test" / "clipper" / "b.mp4", COLOURS["clipper"])
    (tmp_path / "test" / "clipper" / "readme.txt").write_text("x")
    summary = inspect_dataset(tmp_path, "folders")
    assert summary["splits"]["train"]["label_counts"] == {"clipper": 0, "hook": 1}
    assert summary["splits"]["test"]["label_counts"] == {"clipper": 1, "hook": 0}
    assert summary["errors"] == [{"path": str(tmp_path / "test" / "clipper" / "readme.txt"),
                                  "reason": "not a video file, image or frame folder"}]
