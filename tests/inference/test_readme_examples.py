"""The README's examples run as written.

* Its Python examples, on tiny stand-ins for the files they name (``endo_fm.pth``,
  ``polypdiag.pth``, ``procedure.mp4``, ``runs/clf/best``).
* Its workflow commands (every ``endofm ...`` line of its ``bash`` blocks), in order, in one
  empty folder, as the README says they run: from ``endofm data synth`` to ``endofm stream``.
  Only the number of epochs is cut (:data:`SHORTER`) so that the training commands take seconds.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import shutil
from pathlib import Path

import pytest

import endofm
from endofm.cli.main import main
from endofm.data import write_video
from tests.tiny_inputs import moving_frames

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
ASSETS = ROOT / "tests" / "assets" / "endofm_reference_tiny"
# Overrides appended to a command (by its first words) to make it quick; nothing else changes.
SHORTER = {
    "pretrain": ["train.epochs=1"],
    "finetune": ["train.epochs=1"],
}


def python_examples(*, onnxruntime: bool = False) -> list[str]:
    """The README's Python blocks: those that use endofm, or (``onnxruntime=True``) the one that
    runs an exported file with onnxruntime alone (run by ``tests/deploy/test_docs_example.py``
    on a real export)."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    return [code for code in blocks if ("import onnxruntime" in code) == onnxruntime]


def readme_commands() -> list[list[str]]:
    """The ``endofm`` command lines of the README's ``bash`` blocks, continuation lines joined
    and comments dropped, as argument lists without the leading ``endofm``."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["endofm"]:
                commands.append(words[1:])
    return commands


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


def test_the_readme_has_a_python_example_and_a_command_per_workflow():
    assert len(python_examples()) >= 1
    shown = {words[0] for words in readme_commands()}
    assert {"pretrain", "finetune", "evaluate", "probe", "extract", "predict",
            "attention", "export", "stream"} <= shown
    assert len(python_examples(onnxruntime=True)) == 1


@pytest.mark.parametrize("index", range(len(python_examples())))
def test_a_readme_python_example_runs(stand_ins: Path, index: int):
    example = python_examples()[index]
    exec(compile(example, f"README.md, Python example {index + 1}", "exec"), {})


@pytest.mark.slow
def test_the_readme_commands_run_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    exports = importlib.util.find_spec("onnxruntime") is not None  # the [onnx] extra
    for words in readme_commands():
        if words[0] == "export" and not exports:
            continue
        argv = [*words, *SHORTER.get(words[0], []), "--quiet"]
        status = main(argv)
        assert status == 0, f"README command failed (exit {status}): endofm {shlex.join(words)}"
    assert (tmp_path / "runs" / "predictions" / "index.html").is_file()
    assert list((tmp_path / "runs" / "attention").rglob("*.png"))
    assert (tmp_path / "runs" / "clf.onnx").is_file() == exports
    summary = json.loads((tmp_path / "runs" / "live" / "summary.json").read_text())
    assert summary["decisions"] > 0
