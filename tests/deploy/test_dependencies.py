"""Without the ``[onnx]`` extra a command that needs it is one line saying what to install."""

from __future__ import annotations

import sys

import pytest

from endofm.cli.main import main


@pytest.mark.parametrize("module", ["onnxruntime", "onnxscript"])
def test_a_missing_package_is_one_line_naming_the_extra(module, model_dirs, tmp_path,
                                                        monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    out = tmp_path / "m.onnx"
    assert main(["export", "--checkpoint", str(model_dirs["backbone"]), "--output",
                 str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"endofm: error: endofm export needs the '{module}' package, which is not "
                   "installed: pip install 'endofm[onnx]' (onnx, onnxruntime, onnxscript)"]
    assert not out.exists()
