"""Every registered task, end to end through the CLI on the sample data: a tiny fine-tune, an
evaluation and a prediction that writes its report; the model's weights file alone loads as
its folder does."""

from __future__ import annotations

import json

import pytest
import torch

from endofm.cli.main import main
from endofm.tasks import task_specs
from endofm.tasks.registry import load_object

# one training epoch of the task's tiny recipe, quietly, on the CPU
QUICK = ["train.epochs=1", "train.device=cpu", "train.progress=false"]


@pytest.mark.slow
@pytest.mark.parametrize("spec", task_specs(), ids=lambda spec: spec.name)
def test_finetune_evaluate_predict(spec, sample_data, tmp_path):
    from endofm.inference import load_task_model

    assert spec.sample is not None, f"task {spec.name!r} registers no sample dataset"
    data, run = load_object(spec.sample)(tmp_path / "data", 0), tmp_path / "run"
    assert main(["--quiet", "finetune", spec.name, "--config", "tiny", "--data", str(data),
                 "--output", str(run), *QUICK]) == 0
    trained = json.loads((run / "metrics.json").read_text())
    assert trained["checkpoint"] == str(run / "best")

    assert main(["--quiet", "evaluate", spec.name, "--checkpoint", str(run / "best"),
                 "--data", str(data), "--output", str(tmp_path / "eval")]) == 0
    evaluated = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert evaluated["checkpoint"] == str(run / "best")

    video = sorted(sample_data["videos"].rglob("*.mp4"))[0]
    out = tmp_path / "predict"
    assert main(["--quiet", "predict", spec.name, "--checkpoint", str(run / "best"),
                 str(video), "--output", str(out), "--device", "cpu", "--workers", "0"]) == 0
    record = json.loads((out / "run.json").read_text())
    assert (record["task"], record["errors"]) == (spec.name, [])
    assert (out / "index.html").is_file() and (out / video.stem / "report.html").is_file()

    folder = load_task_model(run / "best")
    alone = load_task_model(run / "best" / "model.safetensors")
    assert alone.task == folder.task == spec.name
    assert (alone.num_frames, alone.img_size, alone.frame_step) == (
        folder.num_frames, folder.img_size, folder.frame_step)
    a, b = folder.model.state_dict(), alone.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
