"""Sinkhorn-Knopp centring of teacher outputs (SwAV / DINOv2), distributed.

Instead of subtracting a running centre, the teacher's scores are turned into an assignment of
samples to prototypes whose prototype marginals are (approximately) uniform over the *global*
batch: every sum runs over all processes (all-reduced), so each process gets its rows of the
same assignment a single process would compute on the concatenated batch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from endofm.utils.distributed import all_reduce_sum, is_distributed

CENTERINGS = ("running", "sinkhorn_knopp")  # the two teacher-centring settings


@torch.no_grad()
def sinkhorn_knopp(scores: Tensor, temperature: float, iterations: int = 3) -> Tensor:
    """Teacher targets ``[N, K]`` from teacher scores ``[N, K]`` (this process's rows).

    ``Q = exp(scores / temperature)`` is normalised to sum to 1 over the global batch, then
    alternately each prototype (column of the result) is scaled to total ``1/K`` — summed over
    all processes — and each sample (row) to ``1/B``, ``iterations`` times, where ``B`` is the
    global number of rows. The result is scaled by ``B``, so every row is a probability
    distribution over the ``K`` prototypes and every prototype receives about ``B/K`` in total.
    Computed in float32; scores are shifted by their global maximum first (a constant shift
    cancels in the normalisation and keeps ``exp`` finite).
    """
    scores = scores.float()
    rows = all_reduce_sum(torch.tensor(float(scores.shape[0]), device=scores.device))
    q = torch.exp((scores - _global_max(scores)) / temperature)
    q /= all_reduce_sum(q.sum())
    num_prototypes = q.shape[1]
    for _ in range(iterations):
        q /= all_reduce_sum(q.sum(dim=0, keepdim=True))
        q /= num_prototypes
        q /= q.sum(dim=1, keepdim=True)
        q /= rows
    return q * rows


def _global_max(scores: Tensor) -> Tensor:
    """The largest score over all processes (0 when there are none)."""
    local = scores.max() if scores.numel() else scores.new_tensor(float("-inf"))
    if is_distributed():
        torch.distributed.all_reduce(local, op=torch.distributed.ReduceOp.MAX)
    return local if torch.isfinite(local) else local.new_zeros(())
