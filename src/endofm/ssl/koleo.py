"""The KoLeo regulariser (Kozachenko-Leonenko entropy estimator; Sablayrolles et al. 2019),
as DINOv2 applies it to the student's CLS features: computed on each process's own batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def koleo_loss(features: Tensor, eps: float = 1e-8) -> Tensor:
    """``-mean_i log(‖x_i − x_nn(i)‖ + eps)`` over the L2-normalised rows of ``features``
    ``[N, D]`` (``N ≥ 2``), where ``nn(i)`` is the nearest other row. Spreading the features
    out lowers it. Computed in float32."""
    if features.shape[0] < 2:
        raise ValueError(f"KoLeo needs at least 2 samples per process, got {features.shape[0]}")
    x = F.normalize(features.float(), p=2, dim=-1, eps=eps)
    with torch.no_grad():
        similarity = x @ x.t()
        similarity.fill_diagonal_(-2.0)  # below any cosine similarity: never its own neighbour
        nearest = similarity.argmax(dim=1)
    distances = (x - x[nearest]).norm(dim=-1)
    return -torch.log(distances + eps).mean()
