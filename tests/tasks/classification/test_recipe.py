"""Small-data aids: class-balanced weights, the linear-probe warm start of the head (LP-FT) and
early stopping."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

import endofm
import endofm.tasks.classification.recipe as recipe
from endofm.data import VideoItem
from endofm.eval.linear import linear_probe
from endofm.models import VideoClassifier
from endofm.tasks.classification.data import ClassificationDataConfig
from endofm.tasks.engine import Trainer


def test_balanced_class_weights_hand_computed():
    # N / (C · n_c): 4 / (2 · 3) and 4 / (2 · 1); an absent class gets 0
    weights = recipe.balanced_class_weights([0, 0, 0, 1], 3)
    assert weights.tolist() == pytest.approx([4 / 9, 4 / 3, 0.0])
    assert recipe.balanced_class_weights([0, 1, 0, 1], 2).tolist() == [1.0, 1.0]


def test_warm_started_head_reproduces_the_linear_probe(monkeypatch):
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((30, 96)).astype(np.float32) * 3 + 1
    labels = (feats[:, 0] + 0.5 * rng.standard_normal(30) > 1).astype(int)
    monkeypatch.setattr(recipe.features, "embed_videos", lambda *a, **k: feats)
    model = VideoClassifier(endofm.create_model("endofm_vit_tiny_patch16", img_size=32,
                                                num_frames=2, embed_dim=96, depth=1,
                                                num_heads=4))
    items = [VideoItem(path=f"v{i}.mp4", label=int(y)) for i, y in enumerate(labels)]
    C = recipe.linear_probe_head(model, items, ClassificationDataConfig(), torch.device("cpu"))
    reference = linear_probe(feats, labels)
    assert C == reference.C
    with torch.no_grad():
        probs = model.linear(torch.from_numpy(feats)).softmax(-1).numpy()
    np.testing.assert_allclose(probs, reference.predict_proba(feats), atol=1e-5)


@pytest.mark.parametrize(("patience", "epoch", "best", "stops"), [
    (0, 10, 0, False),  # off
    (3, 4, 1, False),   # epochs 3, 4 (indices 2, 3) without improvement
    (3, 5, 1, True),    # three epochs since the best
    (3, 5, -1, False),  # nothing selected yet
])
def test_early_stopping(patience, epoch, best, stops):
    trainer = SimpleNamespace(cfg=SimpleNamespace(train=SimpleNamespace(patience=patience)),
                              val_items=[0], epoch=epoch, best_epoch=best)
    assert Trainer.stalled(trainer) is stops
    trainer.val_items = None  # no validation carve-out: never
    assert Trainer.stalled(trainer) is False
