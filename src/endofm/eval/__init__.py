"""Frozen-feature evaluation: k-NN and linear probes on clip embeddings (``endofm probe``)."""

from endofm.eval.knn import knn_classify
from endofm.eval.linear import LinearProbe, linear_probe

__all__ = ["LinearProbe", "knn_classify", "linear_probe"]
