"""``endofm data synth`` and ``endofm data inspect`` through the CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from endofm.cli.main import main
from endofm.data.inspect import inspect_dataset


def test_synth_writes_all_layouts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "synth", "--out", str(tmp_path), "--seed", "1", "--scale", "tiny"]) == 0
    printed = capsys.readouterr().out
    for part in ("videos", "polypdiag", "cvc", "kumc"):
        assert str(tmp_path / part) in printed
        assert inspect_dataset(tmp_path / part)["format"] == part


def test_a_negative_seed_is_one_line_naming_it(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """(NumPy's own "expected non-negative integer" named nothing.)"""
    assert main(["data", "synth", "--out", str(tmp_path / "s"), "--seed", "-1"]) == 1
    assert capsys.readouterr().err == ("endofm: error: seed must be >= 0 (a NumPy seed), "
                                       "got -1\n")
    assert not (tmp_path / "s").exists()


def test_inspect_json_matches_library(sample_data: dict[str, Path],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "inspect", str(sample_data["kumc"]), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == json.loads(json.dumps(inspect_dataset(sample_data["kumc"])))
    for key in ("format", "num_videos", "num_frames", "label_counts", "num_masks", "num_boxes",
                "errors"):
        assert key in report


def test_inspect_text_lists_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "empty.mp4").write_bytes(b"")
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "val.txt").write_text("empty.mp4,1\n")
    assert main(["data", "inspect", str(tmp_path), "--format", "polypdiag"]) == 0
    out = capsys.readouterr().out
    assert "errors:           1" in out and "empty.mp4: empty file" in out


def test_inspect_wrong_format_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "inspect", str(tmp_path), "--format", "kumc"]) == 1
    assert "not a kumc dataset" in capsys.readouterr().err


def test_data_group_includes_pretrain_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["data", "--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in ("synth", "inspect", "prepare-pretrain", "preview-views"))
