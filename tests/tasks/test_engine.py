"""The shared engine on a toy task: protocols, resume exactness, accumulation, schedules."""

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from endofm.config import load_config
from endofm.tasks.base import EngineConfig, Task, task_config_schema
from endofm.tasks.engine import (
    carve_validation,
    evaluate,
    fit,
    lr_schedule,
)
from endofm.train import param_groups

from .conftest import fit_killed_in_epoch


@dataclass
class ToyData:
    n: int = 12


@dataclass
class ToyConfig(EngineConfig):
    data: ToyData = field(default_factory=ToyData)


class ToyModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(4, 4)
        self.linear = nn.Linear(4, 1)

    def forward(self, x):
        return self.linear(torch.relu(self.backbone(x))).squeeze(-1)


class ToyTask(Task):
    """Regression on fixed random data; "items" are sample indices. The score of an
    evaluation is scripted by ``scores`` (one per call) when given."""

    name = "toy"
    config_class = ToyConfig
    selection_metric = "score"
    scores: list[float] = []

    def __init__(self, cfg):
        super().__init__(cfg)
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(cfg.data.n, 4, generator=g)
        self.y = self.x.sum(1)
        self.calls = 0

    def build_model(self, pretrained):
        torch.manual_seed(1)
        return ToyModel()

    def read_items(self, root, split):
        return list(range(self.cfg.data.n)) if split == "train" else [0, 1, 2]

    def train_dataset(self, items):
        return TensorDataset(self.x[items], self.y[items])

    def loss(self, model, batch):
        x, y = batch
        return ((model(x) - y) ** 2).mean()

    def evaluate(self, model, items, device, precision, out_dir=None):
        self.calls += 1
        if self.scores:
            return {"score": self.scores[self.calls - 1]}
        with torch.no_grad():
            return {"score": -float(self.loss(model, (self.x[items], self.y[items])))}

    def save_model(self, model, out_dir: Path):
        out_dir.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), out_dir / "model.pt")
        return out_dir

    def load_model(self, path):
        path = Path(path)
        if not (path / "model.pt").is_file():
            raise FileNotFoundError(f"no model in {path}")
        model = ToyModel()
        model.load_state_dict(torch.load(path / "model.pt", weights_only=True))
        return model


def cfg(*overrides):
    base = ["train.epochs=4", "train.batch_size=4", "train.device=cpu", "optim.lr=0.05",
            "optim.scale_lr_with_batch=false", "train.log_every=1"]
    return load_config(task_config_schema(ToyTask), None, [*base, *overrides])


def weights(out):
    return torch.load(Path(out) / "last.pth", weights_only=False)["model"]


def test_schema_merges_task_and_engine_sections():
    c = cfg("data.n=8", "protocol.selection=fixed")
    assert (c.data.n, c.protocol.selection, c.optim.name) == (8, "fixed", "sgd")


def test_carve_validation_is_disjoint_and_seeded():
    train, val = carve_validation(list(range(10)), 0.3, seed=3)
    assert len(val) == 3 and not set(train) & set(val) and len(train) + len(val) == 10
    assert carve_validation(list(range(10)), 0.3, seed=3) == (train, val)
    with pytest.raises(ValueError, match="selection=fixed"):
        carve_validation([1], 0.2, 0)


def test_carve_validation_stratified_keeps_class_proportions():
    labels = [0] * 12 + [1] * 4  # 3:1
    items = list(range(16))
    train, val = carve_validation(items, 0.25, seed=0, labels=labels)
    assert sorted(labels[i] for i in val) == [0, 0, 0, 1]
    assert sorted(train + val) == items
    balanced = [k % 2 for k in range(16)]
    for seed in range(10):  # a plain shuffle gives 3:1 or 4:0 for some of these seeds
        _, val = carve_validation(items, 0.25, seed, labels=balanced)
        assert sorted(balanced[i] for i in val) == [0, 0, 1, 1]
    assert carve_validation(items, 0.25, 3, balanced) == carve_validation(items, 0.25, 3,
                                                                          balanced)


@pytest.mark.parametrize(("scores", "expected_epoch"), [
    ([0.8, 0.1, 0.5, 0.3, 0.2, 0.42], 0),  # the starting weights beat every trained epoch
    ([0.3, 0.1, 0.5, 0.3, 0.2, 0.42], 2),
])
def test_starting_weights_are_a_selection_candidate(tmp_path, scores, expected_epoch):
    class InitialTask(ToyTask):
        def select_initial(self):
            return True

    task = InitialTask(cfg())
    task.scores = scores  # epoch 0, four epochs, then the test evaluation
    result = fit(task, "root", tmp_path)
    assert result["selected_epoch"] == expected_epoch
    assert task.calls == 6
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["epoch"] == 0 and rows[0]["select/score"] == scores[0]
    if expected_epoch == 0:  # the kept model is the untrained one
        kept = task.load_model(tmp_path / "best").state_dict()
        for k, v in task.build_model(None).state_dict().items():
            assert torch.equal(v, kept[k]), k


def test_starting_weights_count_for_early_stopping(tmp_path):
    class InitialTask(ToyTask):
        def select_initial(self):
            return True

    task = InitialTask(cfg("train.patience=2", "train.epochs=10"))
    task.scores = [0.9, 0.1, 0.2, 0.42]  # nothing beats epoch 0: stop after 2 epochs
    result = fit(task, "root", tmp_path)
    assert result["selected_epoch"] == 0
    assert torch.load(tmp_path / "last.pth", weights_only=False)["epoch"] == 2
    assert task.calls == 4


def test_lr_schedule_warmup_and_cosine():
    lr = lr_schedule(1.0, 0.0, epochs=2, steps_per_epoch=5, warmup_epochs=0.4)  # 2 warm-up
    assert lr[0] == pytest.approx(0.5)
    assert lr[1] == pytest.approx(1.0) and lr[2] == pytest.approx(1.0)
    assert lr_schedule(1.0, 0.1, 2, 5, 0.4)[10] == pytest.approx(0.1)


def test_param_groups_no_decay_and_backbone_multiplier():
    groups = param_groups(ToyModel(), 0.05, 0.1)
    by = {(g["weight_decay"], g["lr_mult"]): sum(p.numel() for p in g["params"]) for g in groups}
    assert by == {(0.05, 0.1): 16, (0.0, 0.1): 4, (0.05, 1.0): 4, (0.0, 1.0): 1}


@pytest.mark.parametrize("selection,expected_epoch", [("val", 2), ("test", 2), ("fixed", 4)])
def test_protocol_selects_expected_epoch(tmp_path, selection, expected_epoch):
    task = ToyTask(cfg(f"protocol.selection={selection}"))
    task.scores = [0.1, 0.9, 0.5, 0.3, 0.42]  # 4 selection evaluations, then the test one
    if selection == "fixed":
        task.scores = [0.42]
    result = fit(task, "root", tmp_path)
    assert result["selected_epoch"] == expected_epoch
    assert result["score"] == 0.42  # test evaluated once, at the end
    assert task.calls == (1 if selection == "fixed" else 5)
    assert result["num_selection_items"] == {"val": 2, "test": 3, "fixed": 0}[selection]


def test_resume_after_a_kill_continues_exactly(tmp_path, monkeypatch):
    straight = tmp_path / "straight"
    fit(ToyTask(cfg()), "root", straight)
    split = tmp_path / "split"
    fit_killed_in_epoch(lambda: ToyTask(cfg()), split, monkeypatch)
    assert torch.load(split / "last.pth", weights_only=True)["epoch"] == 2
    fit(ToyTask(cfg()), "root", split)  # the same command again: resumes from last.pth
    for k, v in weights(straight).items():
        assert torch.equal(v, weights(split)[k]), k


def test_gradient_accumulation_matches_bigger_batch(tmp_path):
    fit(ToyTask(cfg("train.batch_size=4", "train.epochs=1", "protocol.selection=fixed",
                    "data.n=8")), "root", tmp_path / "big")
    fit(ToyTask(cfg("train.batch_size=2", "train.accum_steps=2", "train.epochs=1",
                    "protocol.selection=fixed", "data.n=8")), "root", tmp_path / "acc")
    a, b = weights(tmp_path / "big"), weights(tmp_path / "acc")
    # the same samples in the same order; only the batching differs
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-5)


def test_training_writes_logs_and_reduces_loss(tmp_path):
    task = ToyTask(cfg("train.epochs=6", "protocol.selection=fixed"))
    before = task.evaluate(task.build_model(None), [0, 1, 2], None, "fp32")["score"]
    result = fit(ToyTask(cfg("train.epochs=6", "protocol.selection=fixed")), "root", tmp_path)
    assert result["score"] > before
    for name in ("metrics.json", "metrics.jsonl", "config.yaml", "loss.png", "last.pth"):
        assert (tmp_path / name).is_file(), name


def test_evaluate_missing_checkpoint_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model"):
        evaluate(ToyTask(cfg()), tmp_path / "nothing", "root", tmp_path / "out")


def test_ties_go_to_the_later_epoch(tmp_path):
    task = ToyTask(cfg())
    task.scores = [0.5, 0.5, 0.2, 0.1, 0.3]
    assert fit(task, "root", tmp_path)["selected_epoch"] == 2


def test_seeds_report_mean_and_std(tmp_path):
    from endofm.tasks.engine import fit_seeds

    summary = fit_seeds(ToyTask, cfg("protocol.selection=fixed", "train.epochs=2"), "root",
                        tmp_path, None, seeds=2)
    runs = [json.loads((tmp_path / f"seed_{k}" / "metrics.json").read_text()) for k in (0, 1)]
    assert runs[0]["score"] != runs[1]["score"]
    assert summary["score"] == pytest.approx((runs[0]["score"] + runs[1]["score"]) / 2)
    assert summary["score_std"] == pytest.approx(abs(runs[0]["score"] - runs[1]["score"]) / 2)
    assert json.loads((tmp_path / "metrics.json").read_text())["seeds"] == 2


class RecordingToyTask(ToyTask):
    """ToyTask that records the raw weights after every optimiser step."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.trajectory: list[dict[str, torch.Tensor]] = []

    def loss(self, model, batch):
        if getattr(model, "training", False):
            self.trajectory.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return super().loss(model, batch)


def test_weight_ema_averages_the_steps_and_is_what_is_kept(tmp_path):
    decay = 0.8
    task = RecordingToyTask(cfg("protocol.selection=fixed", "train.epochs=3",
                                f"train.ema_decay={decay}"))
    fit(task, "root", tmp_path)
    state = torch.load(tmp_path / "last.pth", weights_only=True)
    # the weights seen by step k's loss are those after step k-1: replay the EMA over them
    after_steps = [*task.trajectory[1:], state["model"]]
    expected = {k: v.clone() for k, v in after_steps[0].items()}  # the first update copies
    for w in after_steps[1:]:
        for k in expected:
            expected[k].mul_(decay).add_(w[k], alpha=1 - decay)
    for k, v in expected.items():
        torch.testing.assert_close(state["ema"][k], v)
        assert not torch.allclose(state["ema"][k], state["model"][k]), k
    kept = torch.load(tmp_path / "best" / "model.pt", weights_only=True)
    for k, v in kept.items():
        assert torch.equal(v, state["ema"][k]), k


def test_weight_ema_selects_on_the_averaged_weights(tmp_path):
    task = ToyTask(cfg("train.ema_decay=0.9"))
    fit(task, "root", tmp_path)
    state = torch.load(tmp_path / "last.pth", weights_only=True)
    kept = torch.load(tmp_path / "best" / "model.pt", weights_only=True)
    assert state["best_epoch"] == 3  # the toy loss keeps falling: the last epoch is kept
    for k, v in kept.items():
        assert torch.equal(v, state["ema"][k]), k


def test_resume_with_weight_ema_continues_exactly(tmp_path, monkeypatch):
    straight = tmp_path / "straight"
    fit(ToyTask(cfg("train.ema_decay=0.9")), "root", straight)
    split = tmp_path / "split"
    fit_killed_in_epoch(lambda: ToyTask(cfg("train.ema_decay=0.9")), split, monkeypatch)
    fit(ToyTask(cfg("train.ema_decay=0.9")), "root", split)
    a = torch.load(straight / "last.pth", weights_only=True)
    b = torch.load(split / "last.pth", weights_only=True)
    for part in ("model", "ema"):
        for k, v in a[part].items():
            assert torch.equal(v, b[part][k]), (part, k)


def test_weight_ema_decay_out_of_range_is_one_clear_error():
    from endofm.config import ConfigError

    with pytest.raises(ConfigError, match="train.ema_decay must be in"):
        cfg("train.ema_decay=1.0")


@pytest.mark.parametrize(("min_samples", "epochs"), [(0, 2), (24, 2), (25, 3), (80, 7)])
def test_min_samples_lengthens_the_schedule_in_whole_epochs(tmp_path, min_samples, epochs):
    """12 items at batch 4: 3 steps an epoch, 2 epochs asked for."""
    trainer_out = tmp_path / "run"
    result = fit(ToyTask(cfg("protocol.selection=fixed", "train.epochs=2",
                             f"train.min_samples={min_samples}")), "root", trainer_out)
    assert result["selected_epoch"] == epochs
    state = torch.load(trainer_out / "last.pth", weights_only=True)
    assert (state["epoch"], state["step"]) == (epochs, 3 * epochs)
    lrs = [row["lr"] for row in map(json.loads, (trainer_out / "metrics.jsonl").open())
           if "lr" in row]
    assert len(lrs) == 3 * epochs
    # one cosine schedule over all the steps: still above 0 at the last step, and near it
    assert lrs[0] == pytest.approx(0.05) and 0 < lrs[-1] < 0.01
    assert all(a > b for a, b in zip(lrs, lrs[1:], strict=False))


def test_min_samples_ignore_the_batch_size(tmp_path):
    """The same 25 samples: 3 epochs at batch 4 and at batch 2 (6 steps an epoch)."""
    result = fit(ToyTask(cfg("protocol.selection=fixed", "train.epochs=2", "train.batch_size=2",
                             "train.min_samples=25")), "root", tmp_path)
    assert result["selected_epoch"] == 3


def test_min_samples_below_zero_is_one_clear_error():
    from endofm.config import ConfigError
    with pytest.raises(ConfigError, match="min_samples"):
        cfg("train.min_samples=-1")


def test_the_last_epoch_is_evaluated_when_eval_every_does_not_divide_the_epochs(tmp_path):
    """5 epochs, an evaluation every 2: epochs 2 and 4 are evaluated, and so is the last one
    (5), which scores best here and is the one kept."""
    task = ToyTask(cfg("train.epochs=5", "train.eval_every=2"))
    task.scores = [0.1, 0.2, 0.9, 0.42]  # epochs 2, 4, 5, then the test evaluation
    result = fit(task, "root", tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if "select/score" in r] == [2, 4, 5]
    assert result["selected_epoch"] == 5 and result["score"] == 0.42
    assert task.calls == 4


def test_a_run_without_pretrained_weights_says_so_in_the_log_and_metrics(tmp_path, caplog):
    """Fine-tuning from a random backbone is said, not silent (``backbone_init``)."""
    fit(ToyTask(cfg("train.epochs=1", "protocol.selection=fixed")), "root", tmp_path)
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.name == "endofm.tasks.engine"
    assert "the backbone starts from random weights" in warning.getMessage()
    assert json.loads((tmp_path / "metrics.json").read_text())["backbone_init"] == "random"


@pytest.fixture
def embedded(monkeypatch):
    """The ``endofm`` logger as a program embedding the library finds it: no handlers of its own
    (an earlier test's ``endofm`` command may have attached the console one)."""
    library = logging.getLogger("endofm")
    monkeypatch.setattr(library, "handlers", [])
    monkeypatch.setattr(library, "level", logging.NOTSET)
    return library


def test_an_embedding_program_gets_the_epoch_messages_through_logging(
        tmp_path, caplog, capsys, embedded):
    task = ToyTask(cfg("train.epochs=2", "protocol.selection=fixed"))
    with caplog.at_level(logging.INFO, logger="endofm"):
        fit(task, "root", tmp_path / "loud")
    epochs = [r.getMessage() for r in caplog.records
              if r.name == "endofm.tasks.engine" and r.getMessage().startswith("epoch ")]
    assert [m.split(":")[0] for m in epochs] == ["epoch 1/2", "epoch 2/2"]
    assert all(r.levelno == logging.INFO for r in caplog.records if r.getMessage() in epochs)
    assert capsys.readouterr() == ("", "")  # nothing printed past the program's logging
    caplog.clear()
    embedded.setLevel(logging.ERROR)  # the program silences the library
    fit(ToyTask(cfg("train.epochs=2", "protocol.selection=fixed")), "root", tmp_path / "quiet")
    assert [r for r in caplog.records if r.name.startswith("endofm")] == []
