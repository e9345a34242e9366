"""The benchmark scripts keep working as the library changes: their building blocks run at
tiny sizes on the CPU (the figures themselves are not checked). ``conftest.py`` puts the scripts'
folder on the path, as running one does."""

import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow

@pytest.mark.parametrize(("recipe", "frames", "setting"), [
    ("endofm", 16, "fp32"), ("endofm+lv", 16, "fp32"), ("lv", 32, "bf16+ckpt")])
def test_pretrain_step_rows_run(recipe, frames, setting):
    from pretrain_step import make_step, recipe_config

    precision, *flags = setting.split("+")
    cfg = recipe_config(recipe, frames, precision, "ckpt" in flags, tiny=True)
    step = make_step(cfg, torch.device("cpu"), 1)
    step()


def test_gpu_table_forward_row_runs():
    from gpu_table import forward_row, sizes

    cells = forward_row("bf16", torch.device("cpu"), sizes(dry_run=True))
    assert cells[0].startswith("forward 8x64x64") and "clips/s" in cells[3]
    cast = forward_row("bf16", torch.device("cpu"), sizes(dry_run=True), cast=True)
    assert cast[0].endswith(", bf16 copy") and "clips/s" in cast[3]
    assert "gpu_table" in sys.modules


def test_backbone_gemm_ratio_rows_run():
    import argparse

    from backbone import gemm_ratio_rows

    import endofm

    model = endofm.create_model("endofm_vit_tiny_patch16", img_size=32, num_frames=2).eval()
    args = argparse.Namespace(compile=False, warmup=0, repeats=3, clock="wall")
    (row,) = gemm_ratio_rows(model, torch.randn(1, 3, 2, 32, 32), "fp32", args)
    assert row.split()[2] == "eager" and float(row.split()[-1]) > 0


def test_backbone_bf16_rows_time_the_cast_copy_beside_autocast():
    import argparse

    from backbone import gemm_ratio_rows

    import endofm

    model = endofm.create_model("endofm_vit_tiny_patch16", img_size=32, num_frames=2).eval()
    args = argparse.Namespace(compile=False, warmup=0, repeats=3, clock="wall")
    rows = gemm_ratio_rows(model, torch.randn(1, 3, 2, 32, 32), "bf16", args)
    assert [row.split()[2] for row in rows] == ["eager", "eager-cast", "eager-cast-linear"]


def test_interleaved_ratio_takes_the_median_of_per_pair_ratios(monkeypatch):
    import backbone

    # alternately timed pairs (forward, GEMMs): (1, 2), (9, 1), (1, 4) seconds
    clock = iter([0, 1.0, 0, 2.0, 0, 9.0, 0, 1.0, 0, 1.0, 0, 4.0])
    monkeypatch.setattr(backbone.time, "perf_counter", lambda: next(clock))
    fwd, gemm, ratio = backbone.interleaved_ratio(lambda: None, lambda: None,
                                                  torch.device("cpu"), 0, 3)
    assert (fwd, gemm, ratio) == (1.0, 2.0, 0.5)  # column medians; ratios 0.5, 9, 0.25


def test_the_cpu_clock_counts_work_not_waiting():
    import backbone

    waited = backbone.timed(lambda: time.sleep(0.2), torch.device("cpu"), 0, 1,
                            backbone.CLOCKS["cpu"])
    assert waited < 0.1 <= backbone.timed(lambda: time.sleep(0.2), torch.device("cpu"), 0, 1)


def test_ssl_probe_seed_runs_every_variant_key(tmp_path):
    from ssl_probe import PRETRAIN, VARIANTS, run_seed
    from synth_probe import ProbeTaskSize

    assert {"recipe", "minutes", "quick", "base", "sk", "sk+ibot", "sk+ibot+koleo"} <= set(VARIANTS)
    size = ProbeTaskSize(pretrain_videos=4, train_videos=4, val_videos=4, frames=20)
    row = run_seed(0, tmp_path, ["train.epochs=1", "train.batch_size=2",
                                 "views.min_window_frames=16", *VARIANTS["sk+ibot+koleo"]],
                   PRETRAIN, "cpu", "texture", size, supervised_epochs=1, factors=True)
    assert 0 <= row["random"] <= 1 and 0 <= row["pretrained"] <= 1 and 0 <= row["supervised"] <= 1
    assert 0 < row["entropy_ratio"] <= 1 and "pretrained_linear" in row
    for factor in ("brightness", "vignette", "lumen_size"):
        assert 0 <= row[f"random_{factor}"] <= 1 and 0 <= row[f"pretrained_{factor}"] <= 1
    for name in ("random", "pretrained"):  # the factor probes reuse the label probe's features
        assert len(list((tmp_path / f"probe_{name}" / "features").glob("*.npy"))) == 2
    assert not list(tmp_path.glob("factors_*/**/*.npy"))


@pytest.mark.parametrize(("variant", "epochs"), [("minutes", 300), ("quick", 75)])
def test_ssl_probe_short_variants_are_the_recipe_at_a_shorter_budget(variant, epochs):
    from ssl_probe import PRETRAIN, VARIANTS

    from endofm.config import load_config
    from endofm.ssl import PretrainConfig

    recipe = load_config(PretrainConfig, PRETRAIN, [])
    short = load_config(PretrainConfig, PRETRAIN, VARIANTS[variant])
    assert (recipe.train.epochs, short.train.epochs) == (1200, epochs)
    recipe.train.epochs = short.train.epochs
    assert recipe == short  # nothing else differs


def test_ssl_probe_factor_tasks_label_above_the_training_median(tmp_path):
    from ssl_probe import factor_tasks

    from endofm.data import read_polypdiag

    probe = tmp_path / "probe"
    (probe / "videos").mkdir(parents=True)
    rows = ["video,split,label,brightness,vignette,lumen_size,advancing\n"]
    for k, (split, bright, adv) in enumerate([("train", 0.1, 1), ("train", 0.5, 0),
                                              ("train", 0.3, 1), ("val", 0.4, 0),
                                              ("val", 0.2, 1)]):
        (probe / "videos" / f"v{k}.mp4").write_bytes(b"")
        rows.append(f"v{k}.mp4,{split},0,{bright},0.45,0.3,{adv}\n")
    (probe / "factors.csv").write_text("".join(rows))
    roots = factor_tasks(probe, tmp_path / "factors")
    assert set(roots) == {"brightness", "advancing"}  # vignette and lumen size are constant
    labels = {split: [it.label for it in read_polypdiag(roots["brightness"], split)]
              for split in ("train", "val")}
    assert labels == {"train": [0, 1, 0], "val": [1, 0]}  # training median 0.3
    assert [it.label for it in read_polypdiag(roots["advancing"], "train")] == [1, 0, 1]


def _bright_dark_task(root: Path, per_class: int) -> Path:
    """A PolypDiag-layout folder whose label is the videos' brightness (1 bright, 0 dark)."""
    from endofm.data import write_video

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        lines = []
        for k in range(2 * per_class):
            label = k % 2
            level = 190 if label else 50
            frames = (level + rng.integers(-20, 20, (16, 64, 64, 3))).astype(np.uint8)
            name = f"{split}_{k}.mp4"
            write_video(root / "videos" / name, frames, fps=30.0)
            lines.append(f"{name},{label}\n")
        (root / "splits").mkdir(parents=True, exist_ok=True)
        (root / "splits" / f"{split}.txt").write_text("".join(lines))
    return root


def test_ssl_probe_supervised_reference_learns_a_visible_label(tmp_path):
    from ssl_probe import supervised_accuracy

    root = _bright_dark_task(tmp_path / "task", per_class=4)
    assert supervised_accuracy(root, tmp_path / "run", 0, "cpu", epochs=4) == 1.0


DEPLOY_TINY = dict(img_size=32, embed_dim=96, depth=2, num_heads=4)


def test_deploy_latency_rows_time_eager_compiled_and_onnx_runtime(tmp_path):
    from deploy import latency_rows

    rows = latency_rows("tiny", tmp_path, warmup=1, repeats=1, **DEPLOY_TINY)
    assert [r[1] for r in rows] == ["PyTorch eager", "PyTorch compiled", "ONNX Runtime (CPU)"]
    assert all(r[0] == "tiny" and float(r[2]) >= float(r[3]) > 0 and float(r[4]) > 0
               for r in rows)


def test_deploy_stream_row_reports_decisions_and_latency_percentiles(tmp_path):
    from deploy import stream_report, stream_row

    report = stream_report("tiny", tmp_path, seconds=1.6, **DEPLOY_TINY)
    assert report.realtime and report.fps == 25 and report.frames == 40
    assert report.decisions > 0 and report.decisions_per_s > 0
    row = stream_row("tiny", report)
    assert row[:6] == ("tiny", "25", "40", str(report.decisions), str(report.dropped),
                       f"{report.decisions_per_s:.2f}")
    assert row[6] == f"{report.latency_ms['p50']:.1f}"
    assert all(float(cell) > 0 for cell in row[6:9])


def test_gpu_table_deploy_rows_run():
    from gpu_table import eager_latency_row, onnx_latency_row, sizes

    s = sizes(dry_run=True)
    assert eager_latency_row(torch.device("cpu"), s)[3].endswith("windows/s")
    row = onnx_latency_row("tensorrt", s)
    assert row[1] == "fp16" and (row[2] == "not installed" or row[2].endswith("ms/window"))
