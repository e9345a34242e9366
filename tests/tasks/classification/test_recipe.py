"""Small-data aids: class-balanced weights and sampling, the linear-probe warm start of the head
(LP-FT, tempered), the stratified carve-out, early stopping, the training augmentations
(flips, quarter turns, colour jitter) and label smoothing."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import endofm
import endofm.tasks.classification.recipe as recipe
from endofm.data import VideoItem
from endofm.data.video import write_video
from endofm.eval.linear import linear_probe
from endofm.tasks.classification.data import ClassificationDataConfig, TrainClips, augment
from endofm.tasks.classification.model import VideoClassifier
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
    C, scale = recipe.linear_probe_head(model, items, ClassificationDataConfig(),
                                        torch.device("cpu"))
    reference = linear_probe(feats, labels)
    assert (C, scale) == (reference.C, 1.0)
    with torch.no_grad():
        probs = model.linear(torch.from_numpy(feats)).softmax(-1).numpy()
    np.testing.assert_allclose(probs, reference.predict_proba(feats), atol=1e-5)


def test_tempered_warm_start_keeps_the_probes_predictions(monkeypatch):
    # features that vary little between videos: the probe's raw-feature weights are huge
    rng = np.random.default_rng(1)
    feats = (rng.standard_normal((40, 96)) * 0.01 + 1).astype(np.float32)
    labels = (feats[:, 0] + 0.005 * rng.standard_normal(40) > 1).astype(int)
    monkeypatch.setattr(recipe.features, "embed_videos", lambda *a, **k: feats)
    items = [VideoItem(path=f"v{i}.mp4", label=int(y)) for i, y in enumerate(labels)]
    model = VideoClassifier(endofm.create_model("endofm_vit_tiny_patch16", img_size=32,
                                                num_frames=2, embed_dim=96, depth=1,
                                                num_heads=4))
    _, scale = recipe.linear_probe_head(model, items, ClassificationDataConfig(),
                                        torch.device("cpu"), max_norm=1.5)
    reference = linear_probe(feats, labels).predict_proba(feats)
    assert scale < 1
    weight = model.linear.weight.detach().double().numpy()
    assert np.linalg.norm(weight[1] - weight[0]) == pytest.approx(1.5, rel=1e-4)
    with torch.no_grad():
        logits = model.linear(torch.from_numpy(feats)).double().numpy()
    margin = logits[:, 1] - logits[:, 0]
    np.testing.assert_array_equal(logits.argmax(1), reference.argmax(1))
    assert np.array_equal(np.argsort(margin), np.argsort(reference[:, 1] - reference[:, 0]))


def test_class_balanced_order_draws_every_class_equally():
    items = [VideoItem(path=f"v{i}.mp4", label=int(i < 3)) for i in range(10)]  # 3 vs 7
    order = recipe.class_balanced_order(items)
    counts = np.bincount([it.label for it in order])
    assert counts.tolist() == [7, 7]
    minority = [it.path for it in order if it.label == 1]
    assert sorted(minority.count(p) for p in {"v0.mp4", "v1.mp4", "v2.mp4"}) == [2, 2, 3]
    assert {it.path for it in order} == {it.path for it in items}


def test_sample_balancing_dataset_and_stratified_carve_out():
    from endofm.config import ConfigError, load_config
    from endofm.tasks import TASKS
    from endofm.tasks.base import task_config_schema

    task_cls = TASKS["classification"]
    cfg = load_config(task_config_schema(task_cls), None, ["recipe.balance=sample",
                                                           "data.clips_per_video=2"])
    task = task_cls(cfg)
    items = [VideoItem(path=f"v{i}.mp4", label=int(i < 3)) for i in range(10)]
    dataset = task.train_dataset(items)
    assert len(dataset) == 2 * 14
    assert np.bincount([it.label for it in dataset.items]).tolist() == [7, 7]
    assert task.stratify_labels(items) == [it.label for it in items]
    assert task.select_initial() is False
    cfg.recipe.lp_warm_start = True
    assert task.select_initial() is True
    with pytest.raises(ConfigError, match="balance"):  # a choice, checked at load time
        load_config(task_config_schema(task_cls), None, ["recipe.balance=oversample"])


@pytest.mark.parametrize(("patience", "epoch", "best", "score", "stops"), [
    (0, 10, 0, 0.5, False),         # off
    (3, 4, 1, 0.5, False),          # epochs 3, 4 (indices 2, 3) without improvement
    (3, 5, 1, 0.5, True),           # three epochs since the best
    (3, 5, -1, -math.inf, False),   # nothing selected yet
    (3, 3, -1, 0.5, True),          # the starting weights (epoch 0) stayed best for 3 epochs
    (3, 2, -1, 0.5, False),
])
def test_early_stopping(patience, epoch, best, score, stops):
    trainer = SimpleNamespace(cfg=SimpleNamespace(train=SimpleNamespace(patience=patience)),
                              val_items=[0], epoch=epoch, best_epoch=best, best_score=score)
    assert Trainer.stalled(trainer) is stops
    trainer.val_items = None  # no validation carve-out: never
    assert Trainer.stalled(trainer) is False


def test_log_loss_selection_metric():
    from endofm.config import ConfigError, load_config
    from endofm.eval.metrics import classification_metrics
    from endofm.tasks import TASKS
    from endofm.tasks.base import task_config_schema

    probs = np.array([[0.8, 0.2], [0.4, 0.6], [0.9, 0.1]])
    m = classification_metrics(np.array([0, 1, 1]), probs)
    assert m["log_loss"] == pytest.approx(-np.log([0.8, 0.6, 0.1]).mean())
    assert m["neg_log_loss"] == -m["log_loss"]
    task_cls = TASKS["classification"]
    schema = task_config_schema(task_cls)
    assert task_cls(load_config(schema, None, [])).selection_metric == "f1"
    task = task_cls(load_config(schema, None, ["recipe.select_metric=neg_log_loss"]))
    assert task.selection_metric == "neg_log_loss"
    with pytest.raises(ConfigError, match="select_metric"):  # a choice, checked at load time
        load_config(schema, None, ["recipe.select_metric=loss"])


def _classification(overrides):
    from endofm.config import load_config
    from endofm.tasks import TASKS
    from endofm.tasks.base import task_config_schema

    task_cls = TASKS["classification"]
    return task_cls(load_config(task_config_schema(task_cls), None, overrides))


def test_flips_and_quarter_turns_reach_all_eight_and_nothing_else():
    clip = torch.arange(2 * 3 * 4 * 4, dtype=torch.uint8).reshape(2, 3, 4, 4)
    dihedral = {tuple(c.flatten().tolist()) for k in range(4)
                for c in (clip.rot90(k, dims=(-2, -1)), clip.flip(-1).rot90(k, dims=(-2, -1)))}
    assert len(dihedral) == 8
    torch.manual_seed(0)
    cfg = ClassificationDataConfig(flip=False)
    assert torch.equal(augment(clip, cfg), clip)  # every augmentation off: the clip as it is
    cfg = ClassificationDataConfig(vflip=True, rot90=True)
    seen = {tuple(augment(clip, cfg).flatten().tolist()) for _ in range(200)}
    assert seen == dihedral
    cfg = ClassificationDataConfig(flip=False, vflip=True)
    assert {tuple(augment(clip, cfg).flatten().tolist()) for _ in range(50)} == {
        tuple(clip.flatten().tolist()), tuple(clip.flip(-2).flatten().tolist())}
    cfg = ClassificationDataConfig(flip=False, rot90=True)
    assert {tuple(augment(clip, cfg).flatten().tolist()) for _ in range(100)} == {
        tuple(clip.rot90(k, dims=(-2, -1)).flatten().tolist()) for k in range(4)}


def test_training_clips_are_augmented(tmp_path):
    frame = np.zeros((32, 32, 3), np.uint8)
    frame[:16, :16] = 230  # one bright quadrant: where it lands tells the clip's orientation
    path = write_video(tmp_path / "v.mp4", np.repeat(frame[None], 8, 0))
    item = VideoItem(path=str(path), label=1)

    def bright_quadrants(cfg):
        ds = TrainClips([item], cfg)
        quadrants = set()
        for i in range(24):
            clip, label = ds[i % len(ds)]
            assert label == 1 and clip.shape == (3, 2, 32, 32)
            q = clip[0, 0].unfold(0, 16, 16).unfold(1, 16, 16).mean((-1, -2))
            quadrants.add(int(q.argmax()))
        return quadrants

    torch.manual_seed(0)
    settings = dict(num_frames=2, frame_step=1, train_short_side=[32, 32], crop_size=32)
    assert bright_quadrants(ClassificationDataConfig(flip=False, **settings)) == {0}
    assert bright_quadrants(ClassificationDataConfig(flip=False, rot90=True, **settings)) == {
        0, 1, 2, 3}


def test_colour_jitter_is_one_draw_per_clip_at_its_probability():
    torch.manual_seed(0)
    frame = torch.randint(40, 200, (1, 3, 8, 8), dtype=torch.uint8)
    clip = frame.repeat(3, 1, 1, 1)  # three identical frames
    cfg = ClassificationDataConfig(flip=False, jitter_p=1.0, jitter=[0.5, 0.5, 0.5, 0.1])
    out = [augment(clip, cfg) for _ in range(20)]
    assert all(o.dtype == torch.uint8 and o.shape == clip.shape for o in out)
    assert all(torch.equal(o[0], o[1]) and torch.equal(o[0], o[2]) for o in out)
    assert sum(not torch.equal(o, clip) for o in out) >= 19
    cfg = ClassificationDataConfig(flip=False, jitter_p=0.5)
    changed = sum(not torch.equal(augment(clip, cfg), clip) for _ in range(400))
    assert 150 < changed < 250
    cfg = ClassificationDataConfig(flip=False, jitter_p=0.0)
    assert all(torch.equal(augment(clip, cfg), clip) for _ in range(20))


@pytest.mark.parametrize("override, message", [
    ("data.jitter_p=1.5", "data.jitter_p must be in"),
    ("data.jitter=[0.4,0.4,0.2]", "data.jitter takes four"),
    ("data.jitter=[0.4,0.4,0.2,0.7]", "data.jitter takes four"),
    ("recipe.label_smoothing=1.0", "recipe.label_smoothing must be in"),
    ("recipe.label_smoothing=-0.1", "recipe.label_smoothing must be in"),
])
def test_augmentation_and_smoothing_settings_are_checked(override, message):
    from endofm.config import ConfigError

    with pytest.raises(ConfigError, match=message):  # one line at load time, naming the key
        _classification([override])


def test_label_smoothing_bounds_the_loss_of_a_confident_right_answer():
    model = lambda clips: clips  # noqa: E731  (the "clips" are the logits)
    logits = torch.tensor([[12.0, -12.0], [-12.0, 12.0]])
    labels = torch.tensor([0, 1])
    plain = _classification([]).loss(model, (logits, labels))
    smooth = _classification(["recipe.label_smoothing=0.2"]).loss(model, (logits, labels))
    assert plain < 1e-6
    # targets 0.9 / 0.1: the loss is at least their entropy, and it pulls the logits together
    assert smooth > -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    assert smooth == pytest.approx(0.1 * 24, rel=1e-3)


@pytest.mark.parametrize("sides", [[200, 300], [300, 260], [256]])
def test_training_frames_smaller_than_the_crop_are_refused_when_training_starts(sides):
    cfg = ClassificationDataConfig(train_short_side=sides)  # loads: evaluation does not use it
    with pytest.raises(ValueError, match=r"data.train_short_side must be \[lo, hi\] with "
                                         r"data.crop_size=224 <= lo <= hi"):
        TrainClips([], cfg)
    TrainClips([], ClassificationDataConfig(train_short_side=[224, 224]))
