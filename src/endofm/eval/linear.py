"""Logistic-regression linear probe (scikit-learn) with the regularisation strength chosen by
stratified cross-validation on the training features only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

DEFAULT_CS = tuple(float(c) for c in np.logspace(-4, 4, 9))


@dataclass
class LinearProbe:
    """A fitted probe: ``model`` (standardise → logistic regression), the chosen ``C`` and its
    mean cross-validated accuracy ``cv_score`` (``None`` when too few items to cross-validate)."""

    model: Pipeline
    C: float
    cv_score: float | None

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities ``[N, C]``; columns are class ids ``0..C-1`` (classes absent from
        training get probability 0)."""
        probs = self.model.predict_proba(features)
        classes = self.model.classes_
        out = np.zeros((len(features), int(classes.max()) + 1))
        out[:, classes] = probs
        return out


def _pipeline(C: float, seed: int) -> Pipeline:
    return make_pipeline(StandardScaler(),
                         LogisticRegression(C=C, max_iter=5000, random_state=seed))


def linear_probe(train: np.ndarray, labels: np.ndarray, Cs: tuple[float, ...] = DEFAULT_CS,
                 folds: int = 5, seed: int = 0) -> LinearProbe:
    """Fit a logistic regression on standardised ``train [N, D]`` features.

    ``C`` (inverse L2 strength) is chosen among ``Cs`` by stratified ``folds``-fold
    cross-validation on the training set (folds capped by the smallest class count; with fewer
    than two items per class the middle ``C`` is used). Ties go to the stronger regularisation.
    """
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels)
    if (counts > 0).sum() < 2:
        raise ValueError("a linear probe needs at least two classes in the training features")
    n_splits = min(folds, int(counts[counts > 0].min()))
    if n_splits < 2:
        C = sorted(Cs)[len(Cs) // 2]
        return LinearProbe(_pipeline(C, seed).fit(train, labels), C, None)
    search = GridSearchCV(_pipeline(Cs[0], seed), {"logisticregression__C": sorted(Cs)},
                          cv=StratifiedKFold(n_splits, shuffle=True, random_state=seed),
                          scoring="accuracy")
    search.fit(train, labels)
    scores = search.cv_results_["mean_test_score"]
    best = int(np.flatnonzero(scores >= scores.max() - 1e-12)[0])  # the smallest C among ties
    C = float(search.cv_results_["param_logisticregression__C"][best])
    return LinearProbe(_pipeline(C, seed).fit(train, labels), C, float(scores[best]))
