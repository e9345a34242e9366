"""Weighted k-NN classification on cosine similarity, as in DINO's k-NN evaluation."""

from __future__ import annotations

import numpy as np


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows of ``x [N, D]`` scaled to unit L2 norm."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)


def knn_classify(train: np.ndarray, train_labels: np.ndarray, query: np.ndarray, k: int,
                 temperature: float = 0.07, num_classes: int | None = None) -> np.ndarray:
    """Class probabilities ``[Q, C]`` of ``query [Q, D]`` from ``train [N, D]``.

    Each query's ``k`` most cosine-similar training rows vote for their class with weight
    ``exp(similarity / temperature)``; the votes are normalised to sum to one. ``k`` larger
    than ``N`` uses every training row.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if len(train) == 0:
        raise ValueError("the k-NN memory bank (training features) is empty")
    labels = np.asarray(train_labels, dtype=np.int64)
    num_classes = num_classes or int(labels.max()) + 1
    sim = l2_normalize(query) @ l2_normalize(train).T
    k = min(k, len(train))
    nearest = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    top_sim = np.take_along_axis(sim, nearest, axis=1)
    weights = np.exp((top_sim - top_sim[:, :1]) / temperature)  # shifted: no overflow
    votes = np.zeros((len(query), num_classes))
    np.add.at(votes, (np.arange(len(query))[:, None], labels[nearest]), weights)
    return votes / votes.sum(axis=1, keepdims=True)
