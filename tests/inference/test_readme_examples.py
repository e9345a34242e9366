"""The README's Python examples run as written, on tiny stand-ins for the files they name
(``endo_fm.pth``, ``polypdiag.pth``, ``procedure.mp4``, ``runs/clf/best``, ``runs/seg/best``)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import endofm
from endofm.data import write_video

from .conftest import moving_frames

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "tests" / "assets" / "endofm_reference_tiny"


def python_examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


@pytest.fixture
def stand_ins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, task_dirs: dict[str, Path]
              ) -> Path:
    """A working folder holding every file the examples name. The released-layout names are
    endofm directories of the tiny reference model (its files do not record the head count,
    which the examples' named configs would otherwise supply)."""
    monkeypatch.chdir(tmp_path)
    endofm.save_pretrained(endofm.create_model("endofm_vit_tiny_patch16", num_heads=4,
                                               pretrained=ASSETS / "endo_fm_tiny.pth"),
                           tmp_path / "endo_fm.pth")
    endofm.load_classifier(ASSETS / "polypdiag_tiny.pth", num_heads=4).save_pretrained(
        tmp_path / "polypdiag.pth")
    for name, task in (("clf", "classification"), ("seg", "segmentation")):
        shutil.copytree(task_dirs[task], tmp_path / "runs" / name / "best")
    write_video(tmp_path / "procedure.mp4", moving_frames(90), fps=30)
    return tmp_path


def test_the_readme_has_python_examples():
    assert len(python_examples()) >= 2


@pytest.mark.parametrize("index", range(len(python_examples())))
def test_a_readme_python_example_runs(stand_ins: Path, index: int):
    example = python_examples()[index]
    exec(compile(example, f"README.md, Python example {index + 1}", "exec"), {})
