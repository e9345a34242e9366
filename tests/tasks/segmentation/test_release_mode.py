"""CVC-12k release mode: whole sequences as T, the release's input normalisation, per-frame
augmentation, no temporal table, the release's Dice denominator."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import endofm
from endofm.config import RECIPES, load_config
from endofm.data import CvcSequence
from endofm.tasks import TASKS
from endofm.tasks.base import task_config_schema
from endofm.tasks.engine import fit
from endofm.tasks.segmentation.data import (
    SegmentationWindows,
    release_normalize,
    release_stretch,
)
from endofm.tasks.segmentation.evaluation import predict_sequence
from endofm.tasks.segmentation.loss import soft_dice_loss
from endofm.tasks.segmentation.model import HybridSegmenter

CONFIGS = RECIPES / "segmentation"


def test_dice_denominators_by_hand():
    logits = torch.zeros(1, 2, 4)  # p = 0.5 everywhere
    target = torch.tensor([[1, 1, 0, 0]])
    # per class: 2Σpg = 2·(0.5·2) = 2; Σp = 2, Σg = 2; Σp² = 1, Σg² = 2
    assert soft_dice_loss(logits, target).item() == pytest.approx(1 - 2 / 4, abs=1e-5)
    assert soft_dice_loss(logits, target, denominator="squares").item() == pytest.approx(
        1 - 2 / 3, abs=1e-5)
    with pytest.raises(ValueError, match="denominator"):
        soft_dice_loss(logits, target, denominator="cubes")


def test_release_stretch_is_bgr_min_max_per_frame():
    frames = torch.zeros(2, 3, 1, 2, dtype=torch.uint8)
    frames[0, :, 0, 0] = torch.tensor([10, 20, 60])  # R, G, B of pixel 0
    frames[0, :, 0, 1] = torch.tensor([30, 40, 50])
    frames[1] = 100  # a constant frame
    out = release_stretch(frames)
    # BGR order, (x - 10) / 50 · 255, truncated
    assert out[0, :, 0, 0].tolist() == [255, 51, 0]
    assert out[0, :, 0, 1].tolist() == [204, 153, 102]
    assert out[1].unique().tolist() == [0]


def test_release_normalize_spans_minus_one_to_one_per_frame():
    frames = torch.randint(20, 200, (3, 3, 8, 8), dtype=torch.uint8)
    x = release_normalize(frames)
    assert x.shape == (3, 3, 8, 8)  # [3, T, H, W]
    for t in range(3):
        assert x[:, t].min().item() == -1.0 and x[:, t].max().item() == 1.0


def write_sequence(root: Path, length: int) -> CvcSequence:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)  # the same frame repeated
    mask = np.zeros((40, 40), dtype=np.uint8)
    mask[5:20, 8:30] = 255
    frames, masks = [], []
    for i in range(length):
        frames.append(root / f"{i}.png")
        masks.append(root / f"m{i}.png")
        Image.fromarray(image).save(frames[-1])
        Image.fromarray(mask).save(masks[-1])
    return CvcSequence("seq", frames, masks)


@pytest.mark.parametrize("per_frame", [False, True])
def test_whole_sequence_items_and_per_frame_augmentation(tmp_path, per_frame):
    seq = write_sequence(tmp_path, 7)
    torch.manual_seed(0)
    data = SegmentationWindows([seq], num_frames=4, stride=2, size=32, margin=8,
                               whole_sequence=True, per_frame=per_frame, normalization="release")
    assert len(data) == 1
    clip, mask = data[0]
    assert clip.shape == (3, 7, 32, 32) and mask.shape == (7, 32, 32)
    same = all(torch.equal(mask[0], mask[t]) for t in range(1, 7))
    assert same != per_frame  # one draw for the window, or one per frame


def test_whole_sequence_prediction_is_one_window():
    seen = []

    def model(clips):
        seen.append(clips.shape[2])
        return torch.zeros(clips.shape[0], 2, *clips.shape[2:])

    probs = predict_sequence(model, torch.zeros(3, 11, 16, 16), None, 4, (16, 16),
                             torch.device("cpu"))
    assert seen == [11] and probs.shape == (11, 2, 16, 16)


def test_segmenter_without_time_embed_ignores_the_temporal_table():
    torch.manual_seed(0)
    backbone = endofm.create_model("endofm_vit_tiny_patch16", img_size=32, num_frames=4,
                                   embed_dim=32, depth=1, num_heads=2)
    kw = dict(img_size=32, stem_width=8, stem_layers=(1, 1, 1), stem_channels=(16, 16, 32),
              gn_groups=4, decoder_hidden=16, decoder_channels=(16, 8, 8, 8))
    feat = torch.randn(5, 32, 2, 2)  # stride-16 features of one 5-frame clip
    for use in (False, True):
        model = HybridSegmenter(backbone, time_embed=use, **kw)
        with torch.no_grad():
            before = model._tokens(feat, 1)
            backbone.time_embed.add_(torch.randn_like(backbone.time_embed))
            after = model._tokens(feat, 1)
        assert torch.equal(before, after) != use
    model(torch.randn(1, 3, 5, 32, 32))  # runs end to end


def test_whole_sequence_needs_batch_one():
    task_cls = TASKS["segmentation"]
    cfg = load_config(task_config_schema(task_cls), CONFIGS / "tiny.yaml",
                      ["data.window=whole_sequence", "train.batch_size=2"])
    with pytest.raises(ValueError, match="batch_size=1"):
        task_cls(cfg)


def test_release_recipe_at_tiny_size(sample_data, tmp_path):
    """configs/segmentation/cvc12k_release.yaml with tiny.yaml's model sizes at 32 px (the
    release's switches kept) fine-tunes and evaluates whole sequences."""
    from omegaconf import OmegaConf

    tiny = OmegaConf.load(CONFIGS / "tiny.yaml")
    sizes = [f"model.{k}={v}" for k, v in tiny.model.items() if k != "backbone"]
    sizes += [f"model.backbone.{k}={v}" for k, v in tiny.model.backbone.items()
              if k != "drop_path_rate"]
    sizes = [s.replace(" ", "") for s in sizes]
    task_cls = TASKS["segmentation"]
    cfg = load_config(task_config_schema(task_cls), CONFIGS / "cvc12k_release.yaml", [
        *sizes, "data.protocol=files", "data.img_size=32", "data.crop_margin=4",
        "train.epochs=1", "train.device=cpu", "protocol.selection=fixed"])
    d, loss = cfg.data, cfg.loss
    assert (d.window, d.normalization, d.augment_per_frame, cfg.model.time_embed) == (
        "whole_sequence", "release", True, False)
    assert loss.dice_denominator == "squares" and cfg.train.batch_size == 1
    result = fit(task_cls(cfg), sample_data["cvc"], tmp_path / "run")
    assert 0.0 <= result["dice"] <= 1.0
