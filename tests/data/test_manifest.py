"""Manifests (CSV with/without header, JSONL) and recursive video scans."""

from pathlib import Path

import pytest

from endofm.data import ClipItem, read_manifest, resolve_items, scan_videos, write_manifest
from endofm.data.formats.labelled_manifest import read_labelled_manifest


def test_positional_csv_resolves_relative_paths(tmp_path):
    manifest = tmp_path / "lists" / "train.csv"
    manifest.parent.mkdir()
    manifest.write_text("a.mp4,-1\nsub/b.mp4,1.5,6.5\n/abs/c.mp4,0,5,1\n\nd.mp4\n")
    items = read_manifest(manifest)
    assert items[0] == ClipItem(manifest.parent / "a.mp4")
    assert items[1] == ClipItem(manifest.parent / "sub/b.mp4", 1.5, 6.5)
    assert items[2] == ClipItem(Path("/abs/c.mp4"), 0.0, 5.0, 1)
    assert items[3].path == manifest.parent / "d.mp4" and len(items) == 4


def test_header_csv_and_jsonl(tmp_path):
    (tmp_path / "m.csv").write_text("path,source,label\nv.mp4,kvasir,2\n")
    assert read_manifest(tmp_path / "m.csv") == [ClipItem(tmp_path / "v.mp4", label=2,
                                                          source="kvasir")]
    (tmp_path / "m.jsonl").write_text('{"path": "v.mp4", "start": 0, "end": 5}\n')
    assert read_manifest(tmp_path / "m.jsonl") == [ClipItem(tmp_path / "v.mp4", 0.0, 5.0)]


def test_spreadsheet_csv_with_a_byte_order_mark_and_semicolons(tmp_path):
    (tmp_path / "m.csv").write_bytes("\ufeffpath;start;end\r\nv.mp4;0;2.5\r\n".encode())
    assert read_manifest(tmp_path / "m.csv") == [ClipItem(tmp_path / "v.mp4", 0.0, 2.5)]
    (tmp_path / "m.csv").write_text("a.mp4\tx\t2\n")
    with pytest.raises(ValueError, match=r"m\.csv:1: start 'x' is not a number"):
        read_manifest(tmp_path / "m.csv")


@pytest.mark.parametrize("text, problem", [
    ("a.mp4,1,2,3,4,5\n", "columns"),
    ("path,colour\na.mp4,red\n", "unknown manifest columns"),
    ("a.mp4,5,2\n", "start < end"),
    ("a.mp4,x,2\n", r"m\.csv:1: start 'x' is not a number \(a header line must start with"),
    ("path,start,end\na.mp4,0,2\na.mp4,0,two\n", r"m\.csv:3: end 'two' is not a number$"),
    ("file,label\na.mp4,1\n", r"m\.csv:1: label 'label' is not a number \(a header line"),
    ("", "no rows"),
])
def test_bad_manifests_name_file_and_line(tmp_path, text, problem):
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(ValueError, match=problem) as info:
        read_manifest(tmp_path / "m.csv")
    assert "m.csv" in str(info.value)


@pytest.mark.parametrize("reader", [read_manifest, read_labelled_manifest])
@pytest.mark.parametrize("line, problem", [
    ("{\"path\": \"a.mp4\", ", r"m\.jsonl:3: invalid JSON"),
    ("[\"a.mp4\", 1]", r"m\.jsonl:3: expected a JSON object$"),
])
def test_bad_jsonl_lines_name_file_and_line(tmp_path, reader, line, problem):
    """Both manifest readers (plain clip lists, labelled manifests) read JSONL the same way:
    blank lines skipped, a line that is not an object named by ``file:line``."""
    (tmp_path / "a.mp4").write_bytes(b"0")
    (tmp_path / "m.jsonl").write_text(f'{{"path": "a.mp4", "label": "x"}}\n\n{line}\n')
    with pytest.raises(ValueError, match=problem):
        reader(tmp_path / "m.jsonl")


def test_missing_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_manifest(tmp_path / "nope.csv")


def test_write_then_read_round_trip(tmp_path):
    items = [ClipItem(tmp_path / "v" / "a.mp4", 0.0, 5.0, None, "src1"),
             ClipItem(tmp_path / "v" / "b.mp4", None, None, 3, None)]
    write_manifest(items, tmp_path / "manifest.csv")
    assert "v/a.mp4" in (tmp_path / "manifest.csv").read_text()
    assert read_manifest(tmp_path / "manifest.csv") == items


def test_scan_videos_finds_files_and_frame_folders(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "x.MP4").write_bytes(b"0")
    (tmp_path / "a" / "b" / "y.avi").write_bytes(b"0")
    (tmp_path / "a" / "notes.txt").write_text("hi")
    frames = tmp_path / "seq"
    frames.mkdir()
    (frames / "1.jpg").write_bytes(b"0")
    assert scan_videos(tmp_path) == [tmp_path / "a" / "b" / "y.avi", tmp_path / "a" / "x.MP4",
                                     frames]
    assert scan_videos(frames) == [frames]
    with pytest.raises(FileNotFoundError):
        scan_videos(tmp_path / "missing")


def test_resolve_items_reports_non_videos(tmp_path):
    (tmp_path / "v.mp4").write_bytes(b"0")
    (tmp_path / "notes.txt").write_text("hi")
    skipped = []
    assert resolve_items(tmp_path, skipped) == [ClipItem(tmp_path / "v.mp4")]
    assert skipped == [{"path": str(tmp_path / "notes.txt"),
                        "reason": "not a video file or frame folder"}]
    assert resolve_items(tmp_path / "v.mp4") == [ClipItem(tmp_path / "v.mp4")]
    (tmp_path / "m.csv").write_text("v.mp4\n")
    assert resolve_items(tmp_path / "m.csv") == [ClipItem(tmp_path / "v.mp4")]
    with pytest.raises(FileNotFoundError):
        resolve_items(tmp_path / "missing.mp4")


def test_jsonl_with_a_byte_order_mark(tmp_path):
    (tmp_path / "m.jsonl").write_bytes('\ufeff{"path": "v.mp4", "label": 1}\n'.encode())
    assert read_manifest(tmp_path / "m.jsonl") == [ClipItem(tmp_path / "v.mp4", label=1)]
