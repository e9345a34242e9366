"""Sinkhorn-Knopp centring: balanced assignments, and the same ones on 2 gloo processes as on
one process with the concatenated batch."""

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

from endofm.ssl import STLoss
from endofm.ssl.sinkhorn import sinkhorn_knopp


def scores(rows=12, k=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    # every sample prefers prototype 0: a plain softmax would collapse onto it
    return 0.1 * torch.randn(rows, k, generator=gen) + torch.tensor([0.2, 0, 0, 0, 0])


def test_doubly_stochastic_after_three_iterations():
    s = scores()
    q = sinkhorn_knopp(s, temperature=0.1, iterations=3)
    b, k = s.shape
    torch.testing.assert_close((q / b).sum(dim=1), torch.full((b,), 1 / b))  # samples: exact
    torch.testing.assert_close((q / b).sum(dim=0), torch.full((k,), 1 / k), atol=2e-3, rtol=0)
    assert (q >= 0).all()
    # softmax of the same scores puts far more than 1/K on prototype 0; SK balances it
    assert F.softmax(s / 0.1, dim=-1)[:, 0].mean() > 0.5


def test_converges_with_more_iterations_and_ignores_a_constant_shift():
    s = 3 * scores(k=5, seed=1)
    q = sinkhorn_knopp(s, temperature=0.05, iterations=200)
    torch.testing.assert_close(q.sum(dim=0), torch.full((5,), 12 / 5), atol=1e-4, rtol=0)
    torch.testing.assert_close(sinkhorn_knopp(s + 7.0, 0.05, 200), q)


def test_matches_a_plain_reference():
    s, temp = scores(seed=2), 0.07
    q = torch.exp(s / temp).t()
    q /= q.sum()
    k, b = q.shape
    for _ in range(3):
        q /= q.sum(dim=1, keepdim=True) * k
        q /= q.sum(dim=0, keepdim=True) * b
    torch.testing.assert_close(sinkhorn_knopp(s, temp, 3), (q * b).t())


def test_st_loss_sinkhorn_centring_keeps_no_centre():
    teacher = [scores(4, seed=3), scores(4, seed=4)]
    student = [torch.randn(4, 5) for _ in range(3)]
    loss = STLoss(5, centering="sinkhorn_knopp")
    targets = loss.teacher_targets(teacher, 0.1)
    expected = sinkhorn_knopp(torch.cat(teacher), 0.1, 3)
    torch.testing.assert_close(torch.cat(targets), expected)
    loss(student, teacher, 0.1)
    assert torch.equal(loss.center, torch.zeros(1, 5))
    with pytest.raises(ValueError, match="centering"):
        STLoss(5, centering="mean")


def _worker(rank, port, full, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    rows = [full[:5], full[5:]][rank]  # unequal shares
    torch.save(sinkhorn_knopp(rows, 0.1, 3), f"{out}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_two_gloo_processes_match_one_process_on_the_concatenated_batch(tmp_path):
    full = scores(rows=12, seed=5)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(port, full, str(tmp_path)), nprocs=2)
    parts = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    torch.testing.assert_close(torch.cat(parts), sinkhorn_knopp(full, 0.1, 3))
    # per-process Sinkhorn (no all-reduce) would give a different assignment
    local = torch.cat([sinkhorn_knopp(full[:5], 0.1, 3), sinkhorn_knopp(full[5:], 0.1, 3)])
    assert not torch.allclose(local, torch.cat(parts), atol=1e-4)
