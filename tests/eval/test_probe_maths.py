"""k-NN and linear probes on constructed features: hand-computed votes, separable and
inseparable sets, regularisation chosen on the training split only."""

import numpy as np
import pytest
from omegaconf import OmegaConf
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from endofm.eval.knn import knn_classify
from endofm.eval.linear import linear_probe
from endofm.eval.probe import ProbeSettings, evaluate_probes

SETTINGS = OmegaConf.structured(ProbeSettings(k=[1, 3]))


def test_knn_votes_match_a_hand_computation():
    train = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    labels = np.array([0, 1, 1, 0])
    query = np.array([[2.0, 0.5]])
    # cosine similarities to the query: 0.970, 0.243, 0.857, -0.970 → top 3 = rows 0, 2, 1
    sims = np.array([2.0, 0.5, 2.5, -2.0]) / (np.linalg.norm(query) * np.array([1, 1, 2**.5, 1]))
    w = np.exp(sims / 0.5)
    expected_1 = (w[1] + w[2]) / (w[0] + w[1] + w[2])
    probs = knn_classify(train, labels, query, k=3, temperature=0.5)
    assert probs[0, 1] == pytest.approx(expected_1)
    assert probs.sum() == pytest.approx(1.0)
    # k=1: the nearest row alone decides; k beyond N uses every row
    assert knn_classify(train, labels, query, k=1).tolist() == [[1.0, 0.0]]
    all_rows = knn_classify(train, labels, query, k=10, temperature=0.5)
    assert all_rows[0, 1] == pytest.approx((w[1] + w[2]) / w.sum())


def _clusters(rng, centres, labels, n, noise):
    feats = np.concatenate([c + noise * rng.standard_normal((n, len(c))) for c in centres])
    return feats, np.repeat(labels, n)


def test_separable_xor_and_inseparable_sets():
    rng = np.random.default_rng(0)
    d = 8
    a, b = np.eye(d)[0] * 4 + 1, np.eye(d)[1] * 4 + 1
    # separable: two clusters → both probes perfect
    train, y = _clusters(rng, [a, b], [0, 1], 20, 0.3)
    test, yt = _clusters(rng, [a, b], [0, 1], 10, 0.3)
    res = evaluate_probes(train, y, test, yt, SETTINGS)
    assert {n: r["accuracy"] for n, r in res.items()} == {"knn_k1": 1.0, "knn_k3": 1.0,
                                                           "linear": 1.0}
    # XOR of four clusters around the origin: k-NN separates it, a linear probe cannot
    corners = [np.r_[s, t, np.zeros(d - 2)] for s in (-1, 1) for t in (-1, 1)]
    xor = [0, 1, 1, 0]
    train, y = _clusters(rng, corners, xor, 15, 0.2)
    test, yt = _clusters(rng, corners, xor, 10, 0.2)
    res = evaluate_probes(train, y, test, yt, SETTINGS)
    assert res["knn_k1"]["accuracy"] == 1.0 and res["knn_k3"]["accuracy"] == 1.0
    assert res["linear"]["accuracy"] <= 0.7
    # labels independent of the features: both probes near chance
    train, test = rng.standard_normal((60, d)), rng.standard_normal((200, d))
    y, yt = rng.integers(0, 2, 60), rng.integers(0, 2, 200)
    res = evaluate_probes(train, y, test, yt, SETTINGS)
    assert all(0.35 <= r["accuracy"] <= 0.65 for r in res.values())
    assert set(res["linear"]) >= {"f1", "precision", "recall", "accuracy", "auroc",
                                  "confusion_matrix", "C", "cv_accuracy"}


def test_linear_probe_picks_c_by_cross_validation_on_training_data():
    rng = np.random.default_rng(1)
    train = rng.standard_normal((40, 30))
    y = (train[:, 0] + 0.8 * rng.standard_normal(40) > 0).astype(int)
    Cs = (1e-3, 1e-1, 1e1, 1e3)
    fitted = linear_probe(train, y, Cs, folds=4, seed=0)
    folds = StratifiedKFold(4, shuffle=True, random_state=0)
    scores = [cross_val_score(make_pipeline(StandardScaler(), LogisticRegression(
        C=c, max_iter=5000, random_state=0)), train, y, cv=folds).mean() for c in Cs]
    assert fitted.C == Cs[int(np.argmax(scores))]
    assert fitted.cv_score == pytest.approx(max(scores))
    # every C separates well-separated clusters perfectly: the tie goes to the strongest
    # regularisation (the smallest C)
    sep = np.concatenate([rng.standard_normal((10, 5)) + 6, rng.standard_normal((10, 5)) - 6])
    assert linear_probe(sep, np.repeat([0, 1], 10), (10.0, 0.1, 1.0), folds=4).C == 0.1
    # one item of a class: too few to cross-validate, the middle C
    y_small = np.array([1] + [0] * 39)
    assert linear_probe(train, y_small, Cs).cv_score is None


def test_knn_rejects_bad_arguments():
    with pytest.raises(ValueError, match="k must be"):
        knn_classify(np.ones((2, 2)), np.array([0, 1]), np.ones((1, 2)), k=0)
    with pytest.raises(ValueError, match="empty"):
        knn_classify(np.zeros((0, 2)), np.zeros(0, int), np.ones((1, 2)), k=1)
