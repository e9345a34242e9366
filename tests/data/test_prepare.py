"""prepare-pretrain: manifest rows decode, broken/short/unsupported files reported, atomic."""

import json

import numpy as np
import pytest
from PIL import Image

from endofm.data import open_video, read_manifest
from endofm.data.prepare import clip_windows, parse_source, prepare_pretrain
from endofm.data.video import write_video


def frames(n: int) -> np.ndarray:
    return np.random.default_rng(n).integers(0, 256, (n, 48, 64, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("sources")
    (root / "colon" / "day1").mkdir(parents=True)
    write_video(root / "colon" / "day1" / "long.mp4", frames(50), fps=10)
    write_video(root / "colon" / "short.mp4", frames(12), fps=10)
    (root / "colon" / "broken.mp4").write_bytes(b"\x00garbage" * 64)
    (root / "colon" / "empty.avi").write_bytes(b"")
    (root / "colon" / "notes.txt").write_text("not a video")
    seq = root / "capsule" / "seq1"
    seq.mkdir(parents=True)
    for i, frame in enumerate(frames(45)):
        Image.fromarray(frame).save(seq / f"{i}.png")
    return root


def test_clip_windows_drop_the_remainder():
    assert clip_windows(50, 10, 2.0) == [(0, 20), (20, 40)]
    assert clip_windows(19, 10, 2.0) == []


def test_parse_source_names(tmp_path):
    assert parse_source(f"kvasir={tmp_path}") == ("kvasir", tmp_path)
    assert parse_source(tmp_path) == (tmp_path.name, tmp_path)


def test_manifest_rows_all_decode_and_skips_are_reported(sources, tmp_path):
    report = prepare_pretrain([sources / "colon", f"cap={sources / 'capsule'}"], tmp_path,
                              clip_seconds=2.0, folder_fps=10, progress=False)
    items = read_manifest(tmp_path / "manifest.csv")
    assert len(items) == report.num_clips == 4 and report.sources == {"colon": 2, "cap": 2}
    assert {it.source for it in items} == {"colon", "cap"}
    for item in items:
        assert item.fps == (10 if item.path.is_dir() else None)  # a folder's rate goes with it
        video = open_video(item.path, folder_fps=10)
        first, stop = round(item.start * video.fps), round(item.end * video.fps)
        assert video.read([first, stop - 1]).shape[0] == 2
    reasons = {s["path"].rsplit("/", 1)[-1]: s["reason"] for s in report.skipped}
    assert set(reasons) == {"short.mp4", "broken.mp4", "empty.avi", "notes.txt"}
    assert "too short" in reasons["short.mp4"] and "empty" in reasons["empty.avi"]
    saved = json.loads((tmp_path / "prepare_report.json").read_text())
    assert saved["num_clips"] == 4 and len(saved["skipped"]) == 4


def test_transcode_writes_short_side_clips(sources, tmp_path):
    report = prepare_pretrain([sources / "colon"], tmp_path, clip_seconds=2.0, transcode=True,
                              short_side=24, progress=False)
    items = read_manifest(tmp_path / "manifest.csv")
    assert report.num_clips == len(items) == 2
    for item in items:
        assert item.start is None and item.path.is_relative_to(tmp_path / "clips" / "colon")
        video = open_video(item.path)
        assert (video.num_frames, video.height, video.width, video.fps) == (20, 24, 32, 10.0)


def test_manifest_write_is_atomic(sources, tmp_path, monkeypatch):
    (tmp_path / "manifest.csv").write_text("old\n")
    import endofm.utils.io

    def crash(src, dst):
        raise OSError("crash before the rename")

    monkeypatch.setattr(endofm.utils.io.os, "replace", crash)
    with pytest.raises(OSError, match="crash"):
        prepare_pretrain([sources / "colon"], tmp_path, clip_seconds=2.0, progress=False)
    assert (tmp_path / "manifest.csv").read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.csv"]


def test_nothing_usable_is_an_error(sources, tmp_path):
    with pytest.raises(ValueError, match="no usable clips"):
        prepare_pretrain([sources / "colon"], tmp_path, clip_seconds=60.0, progress=False)
    assert (tmp_path / "prepare_report.json").is_file()


def test_truncated_video_keeps_only_clips_that_decode(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    data = write_video(tmp_path / "full.mkv", frames(60), fps=10).read_bytes()
    (src / "cut.mkv").write_bytes(data[: len(data) // 2])
    report = prepare_pretrain([src], tmp_path / "out", clip_seconds=2.0, progress=False)
    assert 1 <= report.num_clips < 3
    assert all("left out" in s["reason"] for s in report.skipped) and report.skipped
    for item in read_manifest(tmp_path / "out" / "manifest.csv"):
        video = open_video(item.path)
        video.read(range(round(item.start * video.fps), round(item.end * video.fps)))
