"""The manifest and folders formats: classes, labels, windows, splits and bad rows."""

from __future__ import annotations

import json

import pytest

from endofm.data.datasets.records import DatasetError
from endofm.data.formats import FormatOptions, read_format, select_items
from endofm.data.formats.classes import ClassSet

from .conftest import COLOURS, tiny_video


def manifest(tmp_path, rows: list[str], name: str = "labels.csv"):
    path = tmp_path / name
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def videos(tmp_path):
    return {f"v{i}": tiny_video(tmp_path / "videos" / f"v{i}.mp4", list(COLOURS.values())[i % 3])
            for i in range(6)}


def test_named_labels_sorted_and_windows_read(tmp_path, videos):
    path = manifest(tmp_path, ["path,label,start,end",
                               "videos/v0.mp4,hook,0,0.4", "videos/v0.mp4,grasper,0.4,0.8",
                               "videos/v1.mp4,clipper,,"])
    data = read_format("manifest", path, FormatOptions())
    assert data.classes.names == ("clipper", "grasper", "hook")
    assert not data.multi_label
    items = data.plan.items
    assert [(it.label, it.start, it.end) for it in items] == [(2, 0.0, 0.4), (1, 0.4, 0.8),
                                                             (0, None, None)]
    assert items[0].path == videos["v0"]


def test_integer_labels_are_their_own_index_and_classes_file_orders_names(tmp_path, videos):
    path = manifest(tmp_path, ["path,label", "videos/v0.mp4,3", "videos/v1.mp4,0"])
    data = read_format("manifest", path, FormatOptions())
    assert data.classes.names == ("0", "1", "2", "3")
    assert [it.label for it in data.plan.items] == [3, 0]
    (tmp_path / "classes.yaml").write_text("hook: 0\ngrasper: 1\nclipper: 3\n")
    path = manifest(tmp_path, ["path,label", "videos/v0.mp4,clipper", "videos/v1.mp4,1"])
    data = read_format("manifest", path, FormatOptions())
    assert data.classes.names == ("hook", "grasper", "clipper")
    assert data.classes.ids == (0, 1, 3)
    assert [it.label for it in data.plan.items] == [2, 1]


def test_multi_label_rows_and_jsonl(tmp_path, videos):
    rows = [{"path": "videos/v0.mp4", "label": "hook|grasper"},
            {"path": "videos/v1.mp4", "label": ["clipper"]},
            {"path": "videos/v2.mp4", "label": ""}]
    path = tmp_path / "labels.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    data = read_format("manifest", path, FormatOptions())
    assert data.multi_label
    assert data.classes.names == ("clipper", "grasper", "hook")
    assert [it.labels for it in data.plan.items] == [(1, 2), (0,), ()]
    assert [it.label for it in data.plan.items] == [1, 0, -1]


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_a_spreadsheet_export_reads_as_written(tmp_path, videos, delimiter):
    """A byte-order mark, CRLF line ends, the delimiter of the header (semicolons from a
    decimal-comma locale, tabs) and padded labels: detected as a manifest and read."""
    rows = ["path,label,split", "videos/v0.mp4,hook ,train", "videos/v1.mp4, grasper,test"]
    path = tmp_path / "labels.csv"
    text = "\r\n".join(r.replace(",", delimiter) for r in rows) + "\r\n"
    path.write_bytes(("\ufeff" + text).encode("utf-8"))
    from endofm.data.formats.labelled_manifest import is_manifest

    assert is_manifest(path)
    data = read_format("manifest", path, FormatOptions())
    assert data.classes.names == ("grasper", "hook")
    assert [(it.path, it.label) for it in data.plan.items] == [(videos["v0"], 1),
                                                               (videos["v1"], 0)]
    assert data.plan.tags == ["train", "test"]


def test_bad_rows_name_file_and_line(tmp_path, videos):
    path = manifest(tmp_path, ["path,label,start,end,split", "videos/v0.mp4,hook,,,train",
                               "videos/missing.mp4,hook,,,train", "videos/v1.mp4,hook,2,1,",
                               "videos/v2.mp4,hook,,,holdout", "videos/v3.mp4,,,,"])
    errors: list = []
    data = read_format("manifest", path, FormatOptions(), errors)
    assert len(data.plan.items) == 1
    assert [e["path"] for e in errors] == [f"{path}:{n}" for n in (3, 4, 5, 6)]
    reasons = " ".join(e["reason"] for e in errors)
    assert "missing.mp4 does not exist" in reasons and "start < end" in reasons
    assert "unknown split 'holdout'" in reasons and "missing label" in reasons
    with pytest.raises(DatasetError, match=rf"{path}:3: video .*missing.mp4 does not exist"):
        read_format("manifest", path, FormatOptions())


def test_known_classes_map_a_subset_of_names(tmp_path, videos):
    path = manifest(tmp_path, ["path,label", "videos/v0.mp4,hook"])
    known = ClassSet.named(["clipper", "grasper", "hook"])
    data = read_format("manifest", path, FormatOptions(known_classes=known))
    assert data.classes == known and data.plan.items[0].label == 2
    bad = manifest(tmp_path, ["path,label", "videos/v0.mp4,scissors"], "bad.csv")
    with pytest.raises(DatasetError, match="label scissors is not a class"):
        read_format("manifest", bad, FormatOptions(known_classes=known))


def test_split_column_is_used_and_test_is_carved_by_video_otherwise(tmp_path, videos):
    rows = ["path,label,split"] + [f"videos/v{i}.mp4,{'hook' if i % 2 else 'grasper'},"
                                   f"{'test' if i == 5 else 'train'}" for i in range(6)]
    data = read_format("manifest", manifest(tmp_path, rows), FormatOptions())
    assert [it.path.stem for it in select_items(data, "test", 0.5, 0)] == ["v5"]
    assert len(select_items(data, "train", 0.5, 0)) == 5
    assert select_items(data, "val", 0.5, 0) == []
    # no split column: three clips per video, a third of the videos carved out as test
    rows = ["path,label,start,end"] + [f"videos/v{i}.mp4,{'hook' if i % 2 else 'grasper'},"
                                       f"{k * 0.2},{k * 0.2 + 0.2}"
                                       for i in range(6) for k in range(3)]
    data = read_format("manifest", manifest(tmp_path, rows, "clips.csv"), FormatOptions())
    test = select_items(data, "test", 1 / 3, seed=3)
    train = select_items(data, "train", 1 / 3, seed=3)
    assert len(test) == 6 and len(train) == 12
    assert not {it.path for it in test} & {it.path for it in train}
    assert sorted({it.label for it in test}) == [0, 1]  # stratified: one video per class
    assert test == select_items(data, "test", 1 / 3, seed=3)  # seeded
    other = [select_items(data, "test", 1 / 3, seed=s) for s in range(8)]
    assert any(o != test for o in other)


def test_split_files_list_videos_by_stem(tmp_path, videos):
    rows = ["path,label"] + [f"videos/v{i}.mp4,{'hook' if i % 2 else 'grasper'}"
                             for i in range(6)]
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "train.txt").write_text("v0\nv1\nv2\nv3\n")
    (tmp_path / "splits" / "val.txt").write_text("v4\n")
    (tmp_path / "splits" / "test.txt").write_text("v5.mp4\n")
    data = read_format("manifest", manifest(tmp_path, rows), FormatOptions())
    assert [it.path.stem for it in select_items(data, "val", 0.2, 0)] == ["v4"]
    assert [it.path.stem for it in select_items(data, "test", 0.2, 0)] == ["v5"]
    assert len(select_items(data, "train", 0.2, 0)) == 4
    (tmp_path / "splits" / "test.txt").write_text("v5\nv0\n")
    with pytest.raises(DatasetError, match=r"test.txt:2: .*v0.mp4 is listed in both train and"):
        read_format("manifest", tmp_path / "labels.csv", FormatOptions())
    (tmp_path / "splits" / "test.txt").write_text("v9\n")
    with pytest.raises(DatasetError, match=r"test.txt:1: 'v9' names no video"):
        read_format("manifest", tmp_path / "labels.csv", FormatOptions())


def test_class_folders_with_and_without_split_folders(tmp_path):
    root = tmp_path / "flat"
    for i, name in enumerate(["hook", "grasper", "hook", "clipper"]):
        tiny_video(root / name / f"case{i}.mp4", COLOURS[name])
    frames = root / "grasper" / "case9"
    tiny_video(tmp_path / "tmp.mp4", COLOURS["grasper"])
    frames.mkdir()
    from PIL import Image
    Image.new("RGB", (16, 16)).save(frames / "0001.png")
    (root / "hook" / "notes.txt").write_text("x")
    errors: list = []
    data = read_format("folders", root, FormatOptions(), errors)
    assert data.classes.names == ("clipper", "grasper", "hook")
    assert sorted((it.path.name, it.label) for it in data.plan.items) == [
        ("case0.mp4", 2), ("case1.mp4", 1), ("case2.mp4", 2), ("case3.mp4", 0), ("case9", 1)]
    assert errors == [{"path": str(root / "hook" / "notes.txt"),
                       "reason": "not a video file, image or frame folder"}]
    split = tmp_path / "split"
    for part, name in [("train", "hook"), ("train", "grasper"), ("val", "hook"),
                       ("test", "grasper"), ("test", "clipper")]:
        tiny_video(split / part / name / f"{part}_{name}.mp4", COLOURS[name])
    data = read_format("folders", split, FormatOptions())
    assert data.classes.names == ("clipper", "grasper", "hook")
    assert [it.path.stem for it in select_items(data, "test", 0.2, 0)] == [
        "test_clipper", "test_grasper"]
    assert [it.path.stem for it in select_items(data, "val", 0.2, 0)] == ["val_hook"]


def test_carve_takes_the_rounded_share_and_keeps_both_sides():
    from endofm.data.formats.splits import carve

    keys = list("abcdefg")
    assert len(carve(keys, 0.3, 0)) == 2  # round(2.1)
    assert len(carve(keys[:5], 0.3, 0)) == 2  # round(1.5): half a video goes to the carve
    assert len(carve(keys[:2], 0.9, 0)) == 1  # one video stays on each side
    assert carve(keys, 0.3, 4) == carve(keys, 0.3, 4)
    with pytest.raises(ValueError, match="cannot carve a split from 1 video"):
        carve(["a"], 0.5, 0)
