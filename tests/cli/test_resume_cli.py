"""``kill -9`` in the middle of pre-training, then the same command again: the resumed run
leaves no trace of the crash in ``metrics.jsonl`` or the TensorBoard events."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import endofm
from endofm.cli.main import main
from endofm.config import RECIPES
from endofm.train import step_checkpoints as checkpoints

TINY = RECIPES / "pretrain" / "tiny.yaml"
SETTINGS = ["model.backbone.depth=1", "head.out_dim=64", "head.hidden_dim=64",
            "head.bottleneck_dim=16", "train.batch_size=1", "train.epochs=3", "train.device=cpu",
            "train.log_every=1",
            "train.save_every_steps=0", "train.keep_last=1"]  # a checkpoint at each epoch end
SRC = Path(endofm.__file__).resolve().parents[1]


def logged_steps(path: Path) -> list[int]:
    if not path.is_file():
        return []
    lines = path.read_text().splitlines()
    return [json.loads(line)["step"] for line in lines[:-1]]  # the last may be half-written


def step_of(checkpoint: Path) -> int:
    return int(checkpoint.stem.split("-")[1])


def test_kill_then_resume_leaves_no_duplicate_steps(sample_data, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    args = ["pretrain", "--config", str(TINY), "--data", str(sample_data["videos"]),
            "--output", str(out), *SETTINGS]
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get(
        "PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "endofm.cli.main", "--quiet", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 600
    # wait until a step after the newest checkpoint is logged, then kill without warning
    while not (checkpoints(out) and max(logged_steps(out / "metrics.jsonl"), default=-1)
               >= step_of(checkpoints(out)[-1])):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    newest = step_of(checkpoints(out)[-1])
    steps = logged_steps(out / "metrics.jsonl")
    assert max(steps) >= newest, (newest, steps)  # rows logged after the checkpoint exist
    with open(out / "metrics.jsonl", "a") as f:
        f.write('{"step": 99, "lo')  # and a torn last line
    with pytest.warns(UserWarning, match=r"metrics\.jsonl: dropped a torn last line"):
        assert main(["--quiet", *args]) == 0
    total = step_of(checkpoints(out)[-1])
    assert total > newest
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(total))
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("loss")] == list(range(total))
