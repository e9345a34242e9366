"""Classification end to end: fine-tuning on the sample data, released-layout evaluation."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from endofm.cli.main import main
from endofm.data import open_video
from endofm.tasks.classification.model import load_classifier

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "endofm_reference_tiny"
TINY = "tiny"  # the packaged recipe, by name


@pytest.mark.slow
def test_finetune_from_tiny_pretrain_then_evaluate(sample_data, tiny_pretrained, tmp_path,
                                                  capsys):
    out = tmp_path / "run"
    assert main(["finetune", "classification", "--config", TINY, "--data",
                 str(sample_data["polypdiag"]), "--output", str(out),
                 "--pretrained", str(tiny_pretrained)]) == 0
    assert ("(layout endofm_dir): 47 tensors loaded into the backbone, 2 newly initialised "
            "(linear.weight, linear.bias)") in capsys.readouterr().err
    record = yaml.safe_load((out / "config.yaml").read_text())
    weights = tiny_pretrained / "model.safetensors"
    assert record["inputs"]["pretrained"]["size"] == weights.stat().st_size
    assert record["inputs"]["data"] == str(sample_data["polypdiag"].resolve())
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("f1", "precision", "recall", "accuracy", "auroc"):
        assert 0.0 <= metrics[key] <= 1.0
    # 8 test videos; the encoder's output varies slightly between renders of the sample data,
    # so allow one miss: F1 >= 6/7 (measured 0.857-1.0 from the tiny pretrain backbone)
    assert metrics["f1"] >= 0.85
    assert metrics["auroc"] >= 0.75
    assert (out / "test" / "predictions.csv").read_text().count("\n") == 9
    assert (out / "test" / "confusion_roc.png").is_file()
    ev = tmp_path / "eval"
    assert main(["evaluate", "classification", "--config", TINY, "--checkpoint",
                 str(out / "best"), "--data", str(sample_data["polypdiag"]),
                 "--output", str(ev)]) == 0
    again = json.loads((ev / "metrics.json").read_text())
    assert again["f1"] == pytest.approx(metrics["f1"])
    # without --config: the settings the model was trained with (64 px, 4 frames, 3 clips)
    plain = tmp_path / "eval_plain"
    evaluate = ["evaluate", "classification", "--checkpoint", str(out / "best"), "--data",
                str(sample_data["polypdiag"])]
    assert main([*evaluate, "--output", str(plain)]) == 0
    reproduced = json.loads((plain / "metrics.json").read_text())
    for key in ("f1", "accuracy", "auroc"):
        assert reproduced[key] == pytest.approx(metrics[key], abs=1e-6), key
    assert reproduced["data_settings"] == metrics["data_settings"]
    assert reproduced["data_settings"]["crop_size"] == 64
    assert reproduced["settings_from"] == str(out / "best" / "config.yaml")
    # a contradicting setting is refused, naming it, unless --override-settings
    capsys.readouterr()
    assert main([*evaluate, "--output", str(tmp_path / "e3"), "data.crop_size=32"]) == 1
    err = capsys.readouterr().err
    assert "data.crop_size: trained with 64, given 32" in err and "--override-settings" in err
    # re-running the finished fine-tune with a changed setting is refused, not "resumed"
    assert main(["finetune", "classification", "--config", TINY, "--data",
                 str(sample_data["polypdiag"]), "--output", str(out),
                 "--pretrained", str(tiny_pretrained), "optim.lr=0.5"]) == 1
    assert "optim.lr: 0.001 → 0.5" in capsys.readouterr().err
    assert yaml.safe_load((out / "config.yaml").read_text())["optim"]["lr"] == 0.001


def hand_built_clip(video: Path) -> torch.Tensor:
    """The test clip of a 64-frame 112 px sample video, built by hand: a 4 x 16 clip spans the
    whole video, so its frames are linspace(0, 63, 4) truncated; a 112 short side and a
    112 crop keep every pixel; Kinetics normalisation (x / 255 - 0.45) / 0.225.
    Returns ``[1, 3, 4, 112, 112]``."""
    source = open_video(video)
    assert (source.num_frames, source.height, source.width) == (64, 112, 112)
    frames = source.read([0, 21, 42, 63])  # uint8 [T, H, W, 3]
    x = (torch.from_numpy(frames).float() / 255 - 0.45) / 0.225
    return x.permute(3, 0, 1, 2).unsqueeze(0)


def test_evaluate_released_polypdiag_layout(sample_data, tmp_path):
    """``evaluate`` on the released fine-tune's layout gives the probabilities of
    ``load_classifier``'s logits on clips built by hand with the release's test pipeline."""
    data = tmp_path / "polypdiag"
    shutil.copytree(sample_data["polypdiag"], data)
    checkpoint = ASSETS / "polypdiag_tiny.pth"
    rc = main(["evaluate", "classification", "--config", TINY, "--checkpoint", str(checkpoint),
               "--data", str(data), "--output", str(tmp_path / "ev"), "model.backbone.num_heads=4",
               "data.frame_step=16", "data.test_clips=1", "data.test_crops=1",
               "data.test_short_side=112", "data.crop_size=112"])
    assert rc == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["num_items"] == 8
    with open(tmp_path / "ev" / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    model = load_classifier(checkpoint, num_heads=4)
    with torch.no_grad():
        expected = torch.cat([model(hand_built_clip(Path(r["video"]))) for r in rows])
    expected = expected.softmax(-1).numpy()
    found = np.array([[float(r["prob_0"]), float(r["prob_1"])] for r in rows])
    np.testing.assert_allclose(found, expected, atol=2e-6)
    assert [int(r["prediction"]) for r in rows] == expected.argmax(1).tolist()


def test_missing_or_wrong_checkpoint_is_an_error(sample_data, tmp_path, capsys):
    args = ["evaluate", "classification", "--config", TINY, "--data",
            str(sample_data["polypdiag"]), "--output", str(tmp_path / "ev")]
    assert main([*args, "--checkpoint", str(tmp_path / "missing.pth")]) == 1
    assert "missing.pth" in capsys.readouterr().err
    assert main([*args, "--checkpoint", str(ASSETS / "endo_fm_tiny.pth")]) == 1
    assert "not a classifier checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "ev" / "metrics.json").exists()


@pytest.mark.slow
def test_robust_recipe_trains_on_every_video_from_the_probe_warm_start(
        sample_data, tiny_pretrained, tmp_path, capsys):
    """tiny_robust: the head starts as the tempered linear probe, every training video is
    trained on (no carve-out), a small training set gets more epochs to reach
    ``train.min_samples``, and the last epoch is kept."""
    from endofm.config import recipe_path

    recipe = yaml.safe_load(recipe_path("classification", "tiny_robust").read_text())
    train_videos = (sample_data["polypdiag"] / "splits" / "train.txt").read_text().split()
    clips = len(train_videos) * recipe["data"]["clips_per_video"]  # one epoch's samples
    out = tmp_path / "robust"
    assert main(["finetune", "classification", "--config", "tiny_robust", "--data",
                 str(sample_data["polypdiag"]), "--output", str(out), "--pretrained",
                 str(tiny_pretrained), "train.epochs=1", f"train.min_samples={clips + 1}",
                 "train.progress=false"]) == 0  # not --quiet: it would hide the messages
    printed = capsys.readouterr().err
    assert "linear-probe warm start of the head" in printed
    assert f"2 epochs of {clips} samples instead of 1" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_train_items"] == len(train_videos)
    assert metrics["num_selection_items"] == 0
    assert metrics["selected_epoch"] == 2
