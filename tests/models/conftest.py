import json
from pathlib import Path

import numpy as np
import pytest
import torch

from endofm.models import safe_load

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "endofm_reference_tiny"


@pytest.fixture(scope="session")
def reference():
    """The released-model fixture: config, inputs, reference outputs and checkpoint paths."""
    meta = json.loads((ASSETS / "meta.json").read_text())
    inputs = np.load(ASSETS / "inputs.npz")
    outputs = np.load(ASSETS / "reference_outputs.npz")
    return {
        "meta": meta,
        "config": meta["config"],
        "inputs": [torch.from_numpy(inputs[f"x_{i}"]) for i in range(len(meta["cases"]))],
        "outputs": {k: torch.from_numpy(outputs[k]) for k in outputs.files},
        "pretrain": ASSETS / "endo_fm_tiny.pth",
        "polypdiag": ASSETS / "polypdiag_tiny.pth",
    }


@pytest.fixture(scope="session")
def teacher_backbone(reference):
    """The fixture's teacher backbone state dict (released key names)."""
    raw = safe_load(reference["pretrain"])
    return {k.removeprefix("backbone."): v for k, v in raw["teacher"].items()
            if k.startswith("backbone.")}
