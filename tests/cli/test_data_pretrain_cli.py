"""``data prepare-pretrain`` and ``data preview-views`` through their argparse commands."""

import argparse
import json

import numpy as np
import pytest
from PIL import Image

from endofm.cli.data_pretrain import add_commands
from endofm.cli.main import main
from endofm.data import read_manifest
from endofm.data.video import write_video


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="endofm data")
    add_commands(parser.add_subparsers(dest="data_command"))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def videos(tmp_path):
    root = tmp_path / "videos"
    root.mkdir()
    frames = np.random.default_rng(0).integers(0, 256, (40, 48, 64, 3), dtype=np.uint8)
    write_video(root / "a.mp4", frames, fps=10)
    (root / "broken.mp4").write_bytes(b"\x00nope" * 80)
    return root


def test_prepare_pretrain_json_report(videos, tmp_path, capsys):
    out = tmp_path / "out"
    assert run(["prepare-pretrain", f"src={videos}", "--out", str(out),
                "--clip-seconds", "1.5", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["num_clips"] == 2 and report["sources"] == {"src": 2}
    assert [s["path"] for s in report["skipped"]] == [str(videos / "broken.mp4")]
    assert len(read_manifest(out / "manifest.csv")) == 2


def test_prepare_pretrain_text_lists_skips(videos, tmp_path, capsys):
    assert run(["prepare-pretrain", str(videos), "--out", str(tmp_path / "o"),
                "--clip-seconds", "2"]) == 0
    captured = capsys.readouterr()
    assert "2 clips from 1 videos (videos: 2)" in captured.out
    assert "skipped 1:" in captured.err and "broken.mp4" in captured.err


def test_prepare_pretrain_too_short_everywhere_is_an_error(videos, tmp_path):
    with pytest.raises(ValueError, match="no usable clips"):
        run(["prepare-pretrain", str(videos), "--out", str(tmp_path / "o")])


def test_preview_views_writes_pngs(videos, tmp_path, capsys):
    out = tmp_path / "preview"
    assert run(["preview-views", str(videos / "a.mp4"), "--out", str(out), "--num-clips", "1",
                "--set", "global_size=32", "local_size=16", "global_scale=[0.5,1.0]"]) == 0
    (png,) = sorted(out.glob("*.png"))
    assert str(png) in capsys.readouterr().out
    with Image.open(png) as image:
        assert image.width > 16 * 8 and image.height > 10 * 8


def test_preview_views_bad_setting(videos, tmp_path):
    with pytest.raises(ValueError, match="global_sise"):
        run(["preview-views", str(videos), "--out", str(tmp_path), "--set", "global_sise=32"])


def test_through_the_endofm_entry_point(videos, tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["data", "prepare-pretrain", str(videos), "--out", str(out),
                 "--clip-seconds", "2", "--transcode", "--short-side", "24"]) == 0
    assert len(read_manifest(out / "manifest.csv")) == 2
    assert main(["data", "preview-views", str(out / "manifest.csv"), "--out", str(tmp_path / "p"),
                 "--num-clips", "1", "--set", "global_size=32", "local_size=16"]) == 0
    assert len(list((tmp_path / "p").glob("*.png"))) == 1
    assert main(["data", "prepare-pretrain", str(videos), "--out", str(out)]) == 1
    assert "no usable clips" in capsys.readouterr().err


@pytest.mark.parametrize(("command", "options", "message"), [
    ("prepare-pretrain", ["--clip-seconds", "0"], "clip_seconds must be positive, got 0.0"),
    ("prepare-pretrain", ["--fps", "0"],
     "folder_fps (frame folders' frame rate) must be > 0, got 0.0"),
    ("prepare-pretrain", ["--transcode", "--short-side", "0"],
     "short_side (of the transcoded clips) must be at least 2 pixels, got 0"),
    ("preview-views", ["--fps", "-5"], "folder_fps (frame folders' frame rate) must be > 0"),
    ("preview-views", ["--num-clips", "0"], "num_clips must be positive, got 0"),
])
def test_a_bad_number_is_one_line_naming_it(videos, tmp_path, capsys, command, options, message):
    """Each ends in the CLI's one error line before anything is written (a zero short side
    used to reach the encoder: "avcodec_open2(...) returned 22"; a zero frame rate ran)."""
    out = tmp_path / "out"
    assert main(["data", command, str(videos / "a.mp4" if command == "preview-views" else videos),
                 "--out", str(out), *options]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"endofm: error: {message}") and err.count("\n") == 1
    assert not out.exists()
