"""The docs' example (the README shows the same) runs an exported classifier with onnxruntime and
numpy only, and decides as the PyTorch model does on the same frames."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from endofm.deploy.model import load_deploy_model

pytest.importorskip("onnxruntime")

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
CHECK = ("\nprint(sorted(m for m in ('torch', 'endofm') if m in sys.modules))"
         "\nprint(repr(float(probs[meta['positive_class']])))")


def example_code() -> str:
    section = DOC.read_text(encoding="utf-8").split("### Without endofm", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_shows_the_same_example():
    readme = (DOC.parents[1] / "README.md").read_text(encoding="utf-8")
    assert f"```python\n{example_code()}```" in readme


def test_the_example_is_ten_lines_of_onnxruntime_and_numpy():
    code = example_code()
    lines = [line for line in code.splitlines() if line.strip()]
    assert len(lines) <= 11  # three imports, then the ten-line example body
    assert {m.split()[1] for m in lines if m.startswith("import")} == {"json", "numpy",
                                                                       "onnxruntime"}


def test_the_example_runs_and_matches_pytorch(exported, model_dirs, tmp_path):
    code = example_code().replace('"polypdiag.onnx"', repr(str(exported["classification"])))
    script = tmp_path / "example.py"
    script.write_text("import sys\n" + code + CHECK, encoding="utf-8")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, check=True).stdout.splitlines()
    assert out[-2] == "[]"  # neither torch nor endofm was imported
    deploy = load_deploy_model(model_dirs["classification"])
    t, h, w = deploy.num_frames, deploy.height, deploy.width
    frames = np.random.default_rng(0).integers(0, 256, (t, h, w, 3), dtype=np.uint8)
    x = (frames / 255.0 - np.array(deploy.mean)) / np.array(deploy.std)
    clip = torch.from_numpy(x.transpose(3, 0, 1, 2)[None].astype(np.float32))
    with torch.inference_mode():
        probs = deploy.model(clip).softmax(-1)[0]
    assert float(out[-1]) == pytest.approx(float(probs[1]), abs=1e-5)
    decision = "abnormal" if probs.argmax() == 1 else "normal"
    assert out[-3].split()[0] == decision
