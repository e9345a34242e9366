"""``endofm export`` and ``--runtime onnx`` given a phase model: never an internal error."""

from __future__ import annotations

import pytest

from endofm.cli.main import main
from tests.tiny_inputs import tiny_phase_model


@pytest.fixture(scope="module")
def phase_dir(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("phase_export") / "m"
    tiny_phase_model(root)
    return root


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "internal error" not in err
    return err


def test_export_of_a_phase_model_says_what_to_do(phase_dir, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", "--checkpoint", str(phase_dir), "--output", str(out)]) == 1
    err = one_error_line(capsys)
    assert "phase model" in err and str(phase_dir / "backbone") in err
    assert not out.exists()


def test_runtime_onnx_given_a_model_folder_names_the_file_it_takes(phase_dir, tmp_path,
                                                                    capsys):
    video = tmp_path / "v.mp4"
    video.touch()
    assert main(["stream", str(video), "--runtime", "onnx", "--checkpoint", str(phase_dir),
                 "--output", str(tmp_path / "live")]) == 1
    assert "is a folder" in one_error_line(capsys)
