"""The training core: parameter groups, schedules, optimiser stepping, state, logs."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from endofm.models.checkpoint import CheckpointError
from endofm.train import (
    CosineScheduler,
    OptimizerStepper,
    build_optimizer,
    clip_gradients,
    finish_logs,
    load_training_state,
    newest_readable,
    param_groups,
    prune_checkpoints,
    save_training_state,
    step_checkpoints,
    to_device,
)
from endofm.utils.logging import MetricLogger


class Net(nn.Module):
    """A backbone with a declared table, a head; one frozen tensor."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(3, 4)
        self.backbone.table = nn.Parameter(torch.zeros(1, 2, 4))
        self.backbone.no_weight_decay = lambda: {"table"}
        self.head = nn.Linear(4, 2)
        self.frozen = nn.Parameter(torch.zeros(2, 2), requires_grad=False)


def test_param_groups_rule_and_multipliers():
    groups = param_groups(Net(), 0.05, backbone_lr_mult=0.1)
    shapes = {(g["wd_mult"], g["lr_mult"]): sorted(tuple(p.shape) for p in g["params"])
              for g in groups}
    assert shapes == {(1.0, 0.1): [(4, 3)], (0.0, 0.1): [(1, 2, 4), (4,)],
                      (1.0, 1.0): [(2, 4)], (0.0, 1.0): [(2,)]}
    assert {g["weight_decay"] for g in groups if g["wd_mult"]} == {0.05}
    release = param_groups(Net(), 0.05, decay_embeddings=True)
    decayed = [tuple(p.shape) for g in release if g["wd_mult"] for p in g["params"]]
    assert (1, 2, 4) in decayed and (4,) not in decayed


def test_cosine_scheduler_hand_values():
    s = CosineScheduler(2.0, 0.0, total_iters=6, warmup_iters=2, start_warmup_value=1.0)
    expected = [1.0, 2.0] + [0.5 * 2.0 * (1 + math.cos(math.pi * i / 4)) for i in range(4)]
    np.testing.assert_allclose(s.values, expected)
    assert len(s) == 6 and s[6] == 0.0 and s[100] == 0.0
    assert len(CosineScheduler(1.0, 0.0, 3, warmup_iters=10)) == 3  # warm-up cut at the end
    with pytest.raises(ValueError):
        CosineScheduler(1.0, 0.0, -1)


def grads(*norms):
    ps = []
    for n in norms:
        p = nn.Parameter(torch.zeros(4))
        p.grad = torch.full((4,), n / 2.0)  # ||g|| = n
        ps.append(p)
    return ps


def test_clip_gradients_global_and_per_param():
    ps = grads(3.0, 4.0)  # global norm 5
    clip_gradients(ps, 1.0, "global")
    assert [round(float(p.grad.norm()), 4) for p in ps] == [0.6, 0.8]
    ps = grads(3.0, 0.5)
    clip_gradients(ps, 1.0, "per_param")  # each tensor on its own (the release)
    assert [round(float(p.grad.norm()), 4) for p in ps] == [1.0, 0.5]
    with pytest.raises(ValueError, match="clip mode"):
        clip_gradients(grads(1.0), 1.0, "sometimes")


def test_stepper_sets_schedules_steps_and_zeroes():
    net = Net()
    groups = param_groups(net, 0.0, backbone_lr_mult=0.5)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    stepper = OptimizerStepper(build_optimizer("sgd", groups, 0.1, momentum=0.0), scaler,
                               clip_grad=0.0)
    stepper.set_schedules(0.2, 0.3)
    assert sorted((g["lr"], g["weight_decay"]) for g in stepper.optimizer.param_groups) == [
        (0.1, 0.0), (0.1, 0.3), (0.2, 0.0), (0.2, 0.3)]
    stepper.set_schedules(0.2, 0.0)
    before = net.head.weight.detach().clone()
    stepper.backward(net.head(torch.ones(1, 4)).sum())
    grad = net.head.weight.grad.clone()
    stepper.step(net.parameters())
    torch.testing.assert_close(net.head.weight, before - 0.2 * grad)
    assert net.head.weight.grad is None
    with pytest.raises(ValueError, match="optimizer"):
        build_optimizer("adam", groups, 0.1)


def test_state_round_trip_restores_rng(tmp_path):
    torch.manual_seed(3)
    net = nn.Linear(2, 2)
    save_training_state({"step": 7, "model": net.state_dict()},
                        tmp_path / "checkpoint-0000007.pth")
    expected = torch.rand(3)
    torch.rand(5)
    other = nn.Linear(2, 2)
    state = load_training_state(tmp_path / "checkpoint-0000007.pth", {"model": other})
    assert state["step"] == 7 and torch.equal(torch.rand(3), expected)
    torch.testing.assert_close(other.weight, net.weight)
    with pytest.raises(CheckpointError, match="holds a different model"):
        load_training_state(tmp_path / "checkpoint-0000007.pth", {"model": nn.Linear(3, 2)})
    for step in (12, 9, 100):
        save_training_state({}, tmp_path / f"checkpoint-{step:07d}.pth")
    assert [p.name for p in step_checkpoints(tmp_path)][-1] == "checkpoint-0000100.pth"
    prune_checkpoints(tmp_path, 2)
    assert [p.name for p in step_checkpoints(tmp_path)] == ["checkpoint-0000012.pth",
                                                           "checkpoint-0000100.pth"]


def test_to_device_and_finish_logs(tmp_path):
    batch = {"x": torch.ones(1), "y": [torch.zeros(1), 3]}
    moved = to_device(batch, torch.device("meta"))
    assert moved["x"].device.type == "meta" and moved["y"][1] == 3
    drawn = []
    logger = MetricLogger(tmp_path, tensorboard=False)
    assert finish_logs(logger, tmp_path / "loss.png", lambda *a: drawn.append(a)) == []
    assert drawn == []
    logger = MetricLogger(tmp_path, tensorboard=False)
    logger.log({"loss": 1.0}, 0)
    logger.log({"loss": 0.5}, 1)
    rows = finish_logs(logger, tmp_path / "loss.png", lambda *a: drawn.append(a))
    assert [r["loss"] for r in rows] == [1.0, 0.5]
    assert drawn == [(rows, tmp_path / "loss.png")]
    one = MetricLogger(tmp_path / "one", tensorboard=False)  # a run of a single logged step
    one.log({"loss": 2.0}, 0)
    rows = finish_logs(one, tmp_path / "one.png", lambda *a: drawn.append(a))
    assert drawn[-1] == (rows, tmp_path / "one.png") and len(rows) == 1


def test_newest_readable_skips_damaged_states_and_raises_when_none_reads(tmp_path, capsys):
    paths = [save_training_state({"step": s}, tmp_path / f"checkpoint-{s:07d}.pth")
             for s in (1, 2, 3)]
    paths[2].write_bytes(paths[2].read_bytes()[:200])  # truncated on disk
    path, state = newest_readable(paths)
    assert path == paths[1] and state["step"] == 2
    assert "resuming from the older checkpoint-0000002.pth instead" in capsys.readouterr().err
    for p in paths[:2]:
        p.write_bytes(b"")
    with pytest.raises(CheckpointError, match="checkpoint-0000003.pth"):
        newest_readable(paths)
