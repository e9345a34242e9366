"""The engine's learning-rate warm-up and exact resume, seen from outside: the ``lr`` it logs
and the weights it saves. The task draws random numbers while training (noisy targets), as
dropout and random augmentation do, so a resume that does not restore the RNG state diverges."""

from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from endofm.config import load_config
from endofm.tasks.base import EngineConfig, Task, task_config_schema
from endofm.tasks.engine import fit
from endofm.utils.logging import read_jsonl

from .conftest import fit_killed_in_epoch


@dataclass
class NoisyData:
    n: int = 8


@dataclass
class NoisyConfig(EngineConfig):
    data: NoisyData = field(default_factory=NoisyData)


class NoisyTask(Task):
    """Regression whose targets get fresh noise from the global RNG at every step."""

    name = "noisy"
    config_class = NoisyConfig
    selection_metric = "score"

    def __init__(self, cfg):
        super().__init__(cfg)
        self.x = torch.randn(cfg.data.n, 4, generator=torch.Generator().manual_seed(0))
        self.y = self.x.sum(1)

    def build_model(self, pretrained):
        torch.manual_seed(1)
        return nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 1), nn.Flatten(0))

    def read_items(self, root, split):
        return list(range(self.cfg.data.n))

    def train_dataset(self, items):
        return TensorDataset(self.x[items], self.y[items])

    def loss(self, model, batch):
        x, y = batch
        return ((model(x) - y - 0.5 * torch.randn_like(y)) ** 2).mean()

    def evaluate(self, model, items, device, precision, out_dir=None):
        with torch.no_grad():
            return {"score": -float(((model(self.x) - self.y) ** 2).mean())}

    def save_model(self, model, out_dir: Path):
        out_dir.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), out_dir / "model.pt")
        return out_dir

    def load_model(self, path):
        model = self.build_model(None)
        model.load_state_dict(torch.load(Path(path) / "model.pt", weights_only=True))
        return model


def noisy_task(*overrides):
    base = ["train.epochs=4", "train.batch_size=2", "train.device=cpu", "train.log_every=1",
            "optim.lr=0.05", "optim.scale_lr_with_batch=false", "protocol.selection=fixed"]
    return NoisyTask(load_config(task_config_schema(NoisyTask), None, [*base, *overrides]))


def saved_model(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "last.pth", weights_only=True)["model"]


def test_lr_warms_up_then_decays(tmp_path):
    # 4 steps per epoch, 1 warm-up epoch: the lr rises linearly towards 0.05 over the first 4
    # steps (whether the ramp ends at 0.05 or one step short of it), then falls along a cosine
    # to min_lr
    fit(noisy_task("optim.warmup_epochs=1", "optim.min_lr=0.001"), "root", tmp_path)
    lrs = [row["lr"] for row in read_jsonl(tmp_path / "metrics.jsonl") if "lr" in row]
    assert len(lrs) == 16
    warm, rest = lrs[:4], lrs[4:]
    assert all(a < b for a, b in zip(warm, warm[1:], strict=False)), lrs
    assert warm[0] <= 0.05 / 4 and warm[-1] <= 0.05, lrs
    assert rest[0] == pytest.approx(0.05), lrs
    assert all(a > b for a, b in zip(rest, rest[1:], strict=False)), lrs
    assert rest[-1] > 0.001


def test_resume_restores_the_random_state(tmp_path, monkeypatch):
    straight = tmp_path / "straight"
    fit(noisy_task(), "root", straight)
    split = tmp_path / "split"
    fit_killed_in_epoch(noisy_task, split, monkeypatch)
    fit(noisy_task(), "root", split)
    a, b = saved_model(straight), saved_model(split)
    for key in a:
        assert torch.equal(a[key], b[key]), key
