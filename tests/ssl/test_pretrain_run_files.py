"""Pre-training seen through the files a run leaves: the weight-decay schedule in the saved
optimiser state, checkpoints that a failed write cannot corrupt, and decode failures that
happen during training reported in ``skipped.json``. Small videos made here, tiny settings."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from endofm.cli.main import main
from endofm.config import RECIPES, load_config
from endofm.data.video import write_video
from endofm.ssl import PretrainConfig, pretrain

pytestmark = pytest.mark.slow

TINY = RECIPES / "pretrain" / "tiny.yaml"
FAST = ["model.backbone.depth=1", "head.out_dim=64", "head.hidden_dim=64", "head.bottleneck_dim=16",
        "train.batch_size=2", "train.epochs=1", "train.progress=false", "train.device=cpu",
        "train.save_every_steps=1", "train.keep_last=100",
        "views.global_size=32", "views.local_size=16", "views.decode_short_side=32"]


def frames(seed: int, count: int = 40, size: int = 32) -> np.ndarray:
    """A smooth random clip, uint8 ``[count, size, size, 3]``."""
    gen = np.random.default_rng(seed)
    low = gen.integers(0, 256, (count, size // 4, size // 4, 3), dtype=np.uint8)
    return low.repeat(4, axis=1).repeat(4, axis=2)


@pytest.fixture
def videos(tmp_path) -> Path:
    root = tmp_path / "videos"
    for k in range(4):
        write_video(root / f"clip{k}.mp4", frames(k))
    return root


def cfg(*overrides: str):
    return load_config(PretrainConfig, TINY, [*FAST, *overrides])


def step_checkpoints(out: Path) -> list[Path]:
    return sorted(out.glob("checkpoint-*.pth"))


def test_weight_decay_rises_from_start_to_end_value(videos, tmp_path):
    # 4 clips, batch 4, 4 epochs: 4 steps, a checkpoint after each
    pretrain(cfg("train.epochs=4", "train.batch_size=4", "optim.weight_decay=0.04",
                 "optim.weight_decay_end=0.4"), videos, tmp_path)
    decays = []
    for path in step_checkpoints(tmp_path):
        groups = torch.load(path, weights_only=True)["optimizer"]["param_groups"]
        decays.append(max(g["weight_decay"] for g in groups))  # the decayed group
    assert len(decays) == 4
    assert decays[0] == pytest.approx(0.04)
    assert all(a < b for a, b in zip(decays, decays[1:], strict=False)), decays
    assert decays[-1] < 0.4


def test_a_failed_checkpoint_write_leaves_the_previous_one_intact(videos, tmp_path,
                                                                   monkeypatch):
    real_save = torch.save
    calls = []

    def disk_full_on_second_checkpoint(obj, f, *args, **kwargs):
        if "checkpoint" in str(f):
            calls.append(f)
            if len(calls) == 2:
                half = b"PK\x03\x04 half a checkpoint"
                if hasattr(f, "write"):  # the temporary file of an atomic write
                    f.write(half)
                else:
                    Path(f).write_bytes(half)
                raise OSError(28, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_full_on_second_checkpoint)
    with pytest.raises(OSError, match="No space left"):
        pretrain(cfg(), videos, tmp_path)
    monkeypatch.setattr(torch, "save", real_save)
    left = [p.name for p in tmp_path.iterdir() if "checkpoint" in p.name]
    assert left == ["checkpoint-0000001.pth"]
    assert torch.load(tmp_path / left[0], weights_only=True)["step"] == 1
    report = pretrain(cfg(), videos, tmp_path)  # the same command again resumes from step 1
    assert report["steps"] == 2


def test_decode_failure_during_training_is_reported(videos, tmp_path, capsys):
    # a frame folder whose first frame is fine (so it passes the check when the run starts) but
    # whose other frames are not images: every window of it fails while training
    broken = videos / "broken_frames"
    broken.mkdir()
    Image.fromarray(frames(9, count=1)[0]).save(broken / "frame_000.png")
    for k in range(1, 40):
        (broken / f"frame_{k:03d}.png").write_bytes(b"not a png")
    out = tmp_path / "run"
    assert main(["pretrain", "--config", str(TINY), "--data", str(videos), "--output", str(out),
                 *FAST, "train.batch_size=5"]) == 0
    skipped = json.loads((out / "skipped.json").read_text())
    assert len(skipped) == 1
    assert Path(skipped[0]["path"]).parent == broken
    assert "unreadable image" in skipped[0]["reason"]
    assert str(broken) in capsys.readouterr().err
