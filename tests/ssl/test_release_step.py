"""endofm's own pre-training step against three steps of the release's ``train_one_epoch``.

The fixture (``tests/assets/release_step``, made by ``scripts/make_release_step_fixture.py``
with the release's code; provenance in its README) holds the initial weights, the views, the
schedule values and the student, teacher and centre after each release step.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from endofm.config import RECIPES, load_config
from endofm.ssl import PretrainConfig
from endofm.ssl.trainer import PretrainTrainer
from endofm.train import CosineScheduler
from endofm.utils.distributed import init_distributed

FIXTURE = Path(__file__).resolve().parents[1] / "assets" / "release_step"
TINY = RECIPES / "pretrain" / "tiny.yaml"
RELEASE_SWITCHES = ("optim.clip_mode=per_param", "optim.decay_embeddings=true",
                    "ssl.teacher=release")


@pytest.fixture(scope="module")
def fixture() -> tuple[dict, dict[str, torch.Tensor]]:
    meta = json.loads((FIXTURE / "meta.json").read_text())
    return meta, load_file(FIXTURE / "release_step.safetensors")


def part(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def trainer_for(meta: dict, data: Path, output: Path, switches: tuple[str, ...]
                ) -> PretrainTrainer:
    m = meta["model"]
    cfg = load_config(PretrainConfig, TINY, [
        f"views.global_size={m['img_size']}", f"views.num_frames={m['num_frames']}",
        f"model.backbone.embed_dim={m['embed_dim']}", f"model.backbone.depth={m['depth']}",
        f"model.backbone.num_heads={m['num_heads']}", "model.backbone.drop_path_rate=0.0",
        f"head.out_dim={m['out_dim']}", f"head.hidden_dim={m['hidden_dim']}",
        f"head.bottleneck_dim={m['bottleneck_dim']}", f"optim.clip_grad={meta['clip_grad']}",
        f"train.batch_size={meta['batch_size']}", "optim.freeze_last_layer=1",
        f"loss.teacher_temp={meta['teacher_temp']}",
        f"loss.warmup_teacher_temp={meta['teacher_temp']}", "loss.combine=release",
        "loss.koleo_weight=0",  # the release has no KoLeo term (tiny.yaml adds one)
        "train.precision=fp32", "train.device=cpu", "train.progress=false", *switches])
    return PretrainTrainer(cfg, data, output, init_distributed("cpu"))


def run_release_steps(meta: dict, tensors: dict[str, torch.Tensor], trainer: PretrainTrainer
                      ) -> list[dict[str, float]]:
    """Load the fixture's start, run ``train_step`` once per release step (one step per epoch,
    as the fixture ran) and return the largest |endofm − release| per step."""
    initial = part(tensors, "initial.")
    trainer.meta.student.load_state_dict(initial)
    trainer.meta.teacher.load_state_dict(initial)
    trainer.meta.objective.dino.center.zero_()
    steps = meta["steps"]
    trainer.lr, trainer.wd, trainer.momentum = (np.array(meta["schedules"][k])
                                                for k in ("lr", "wd", "momentum"))
    trainer.teacher_temp = np.full(steps, meta["teacher_temp"])
    views = [tensors[f"views.{i}"] for i in range(2 + len(meta["local_frames"]))]
    diffs = []
    for step in range(steps):
        trainer.epoch = trainer.step = step
        trainer.train_step(views)
        diff = {}
        for name, model in (("student", trainer.meta.student), ("teacher", trainer.meta.teacher)):
            want = part(tensors, f"step{step}.{name}.")
            got = model.state_dict()
            assert got.keys() == want.keys()
            diff[name] = max((got[k] - want[k]).abs().max().item() for k in want)
        center = trainer.meta.objective.dino.center - tensors[f"step{step}.center"]
        diff["center"] = center.abs().max().item()
        diffs.append(diff)
    return diffs


def test_fixture_schedules_are_endofm_cosine_schedules(fixture):
    meta, _ = fixture
    s = meta["schedules"]
    np.testing.assert_allclose(CosineScheduler(2e-3, 1e-4, 3, 1, 1e-4).values, s["lr"],
                               rtol=1e-12)
    np.testing.assert_allclose(CosineScheduler(0.04, 0.4, 3).values, s["wd"], rtol=1e-12)
    np.testing.assert_allclose(CosineScheduler(0.9, 1.0, 3).values, s["momentum"], rtol=1e-12)
    assert all(n > 0 for n in meta["tensors_clipped_per_step"])  # clipping was active


def test_release_switches_match_release_step(fixture, sample_data, tmp_path):
    meta, tensors = fixture
    trainer = trainer_for(meta, sample_data["videos"], tmp_path, RELEASE_SWITCHES)
    for step, diff in enumerate(run_release_steps(meta, tensors, trainer)):
        assert max(diff.values()) <= 1e-5, (step, diff)


@pytest.mark.parametrize("switches", [(), RELEASE_SWITCHES[1:], RELEASE_SWITCHES[::2]],
                         ids=["endofm-defaults", "global-clip", "no-embedding-decay"])
def test_endofm_defaults_differ_from_release_step(fixture, sample_data, tmp_path, switches):
    meta, tensors = fixture
    trainer = trainer_for(meta, sample_data["videos"], tmp_path, switches)
    diffs = run_release_steps(meta, tensors, trainer)
    assert diffs[0]["center"] <= 1e-5  # same first forward: the difference is in the update
    assert max(d["student"] for d in diffs) > 2e-5, diffs  # at least twice the tolerance
