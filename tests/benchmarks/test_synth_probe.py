"""The probe benchmark's synthetic tasks: layout, balanced labels, shapes, and the property each
task's label is about (motion direction, drifting lighting, vessel texture)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from synth_probe import (
    FACTORS,
    TASKS,
    ProbeTaskSize,
    apply_look,
    drifting_look,
    motion_camera,
    synthesize_probe_task,
    vessel_texture,
)

from endofm.data import open_video, read_polypdiag

SMALL = ProbeTaskSize(pretrain_videos=3, train_videos=4, val_videos=2, frames=16, size=32)


@pytest.mark.parametrize("task", TASKS)
def test_layout_labels_and_shapes(tmp_path: Path, task: str) -> None:
    paths = synthesize_probe_task(tmp_path, seed=1, task=task, size=SMALL)
    assert sorted(p.name for p in paths["pretrain"].glob("*.mp4")) == [
        f"pretrain_{k:03d}.mp4" for k in range(3)]
    train = read_polypdiag(paths["probe"], "train")
    val = read_polypdiag(paths["probe"], "val")
    assert [it.label for it in train] == [0, 1, 0, 1] and [it.label for it in val] == [0, 1]
    video = open_video(train[0].path)
    assert video.num_frames == SMALL.frames
    frames = video.read(np.arange(SMALL.frames))
    assert frames.shape == (SMALL.frames, SMALL.size, SMALL.size, 3)
    assert frames.dtype == np.uint8
    # the unlabelled pre-training videos are not the probe's videos
    assert not (paths["pretrain"] / train[0].path.name).exists()


@pytest.mark.parametrize("task", ["polyp_drift", "motion"])
def test_factors_file_describes_every_probe_video(tmp_path: Path, task: str) -> None:
    paths = synthesize_probe_task(tmp_path, seed=2, task=task, size=SMALL)
    with (paths["probe"] / "factors.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    items = read_polypdiag(paths["probe"], "train") + read_polypdiag(paths["probe"], "val")
    assert [(r["video"], int(r["label"])) for r in rows] == [(it.path.name, it.label)
                                                             for it in items]
    assert [r["split"] for r in rows] == ["train"] * 4 + ["val"] * 2
    for row, item in zip(rows, items, strict=True):
        decoded = open_video(item.path).read(np.arange(SMALL.frames)).mean() / 255
        assert float(row["brightness"]) == pytest.approx(decoded, abs=0.02)
        assert row["advancing"] in ("0", "1")
    vignettes = {r["vignette"] for r in rows}
    # drifting-light tasks draw a vignette and lumen per video; motion shares one look
    assert len(vignettes) == (1 if task == "motion" else len(rows)), vignettes
    assert set(FACTORS) <= set(rows[0])


def test_unknown_task_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown probe task"):
        synthesize_probe_task(tmp_path, task="colour")


def test_a_negative_seed_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="seed must be >= 0"):
        synthesize_probe_task(tmp_path / "p", seed=-2)
    assert not (tmp_path / "p").exists()


def test_motion_camera_zooms_in_when_advancing() -> None:
    rng = np.random.default_rng(0)
    advancing = motion_camera(rng, 16, 64, advancing=True)
    withdrawing = motion_camera(rng, 16, 64, advancing=False)
    assert np.all(np.diff(advancing.zoom) > 0) and np.all(np.diff(withdrawing.zoom) < 0)


def test_drifting_look_moves_between_two_looks() -> None:
    gains, gammas = drifting_look(np.random.default_rng(3), 48)
    assert gains.shape == (48, 3) and gammas.shape == (48,)
    assert np.abs(gains[0] - gains[-1]).max() > 0.01  # the look changes within the video
    steps = np.abs(np.diff(gains, axis=0)).max()
    assert steps < np.abs(gains[0] - gains[-1]).max() / 10  # smoothly
    assert 0.55 * 0.75 - 1e-6 <= gains.min() and gains.max() <= 1.3 * 1.25 + 1e-6
    frame = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    assert np.array_equal(apply_look(frame, np.ones(3, np.float32), 1.0), frame)
    darker = apply_look(frame, np.full(3, 0.5, np.float32), 1.0)
    assert np.abs(darker.astype(int) - frame // 2).max() <= 1


def test_vessel_texture_dense_has_finer_detail() -> None:
    def detail(texture: np.ndarray) -> float:
        grey = texture.mean(-1)
        return float(np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean())

    dense = [detail(vessel_texture(np.random.default_rng(s), True)) for s in range(3)]
    sparse = [detail(vessel_texture(np.random.default_rng(s), False)) for s in range(3)]
    assert min(dense) > 1.5 * max(sparse)


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    """The benchmark's renders are reproducible to the byte at its own frame size (libx264's
    macroblock tree made about 60 % of a seed's videos differ between two renders)."""
    size = ProbeTaskSize(pretrain_videos=4, train_videos=2, val_videos=2)
    runs = [synthesize_probe_task(tmp_path / name, seed=0, task="polyp_drift", size=size)
            for name in ("a", "b")]
    files = [{p.relative_to(run["pretrain"].parent): p.read_bytes()
              for p in sorted(run["pretrain"].parent.rglob("*.mp4"))} for run in runs]
    assert len(files[0]) == 8 and files[0] == files[1]
