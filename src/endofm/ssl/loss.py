"""Endo-FM's spatial-temporal matching loss: DINO cross-entropy over view pairs, split into
L_cv (teacher global ↔ student local) and L_dm (teacher global ↔ the other student global view,
which has a different frame count). The loss owns the teacher centre."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from endofm.ssl.sinkhorn import CENTERINGS, sinkhorn_knopp
from endofm.utils.distributed import all_reduce_mean

GLOBAL_PAIRINGS = ("cross", "same")


def view_pairs(num_global: int, num_views: int, global_pairing: str = "cross"
               ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(cross-view pairs, dynamic-motion pairs) of (teacher view, student view) indices.

    Views ``0..num_global-1`` are global. With ``global_pairing="cross"`` (the release, DINO)
    a teacher view is never paired with itself; ``"same"`` pairs each global view only with
    itself instead (what EndoFM-LV's code does in its global term).
    """
    if global_pairing not in GLOBAL_PAIRINGS:
        raise ValueError(f"global_pairing must be one of {GLOBAL_PAIRINGS}, "
                         f"got {global_pairing!r}")
    cv = [(t, s) for t in range(num_global) for s in range(num_global, num_views)]
    dm = [(t, s) for t in range(num_global) for s in range(num_global)
          if (s == t) == (global_pairing == "same")]
    if not cv and not dm:
        raise ValueError(f"no view pairs with {num_global} global and {num_views} views in all")
    return cv, dm


class STLoss(nn.Module):
    """``forward(student, teacher, teacher_temp)`` with per-view outputs ``[B, K]``.

    ``combine="release"`` (default) averages all pairs together, as the release does
    (16 L_cv + 2 L_dm pairs / 18); ``"sum"`` returns ``L_cv + L_dm`` (each a mean over its
    pairs), the paper's formula.

    ``centering="running"`` (the release) subtracts a running centre of the teacher outputs;
    ``"sinkhorn_knopp"`` (DINOv2, EndoFM-LV) turns the teacher outputs of all global views of
    the global batch into a balanced assignment (:func:`sinkhorn_knopp`) and keeps no centre.
    """

    def __init__(self, out_dim: int, student_temp: float = 0.1, center_momentum: float = 0.9,
                 combine: str = "release", centering: str = "running",
                 sk_iterations: int = 3, global_pairing: str = "cross") -> None:
        super().__init__()
        if combine not in ("release", "sum"):
            raise ValueError(f"combine must be 'release' or 'sum', got {combine!r}")
        if centering not in CENTERINGS:
            raise ValueError(f"centering must be one of {CENTERINGS}, got {centering!r}")
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.combine = combine
        self.centering, self.sk_iterations = centering, sk_iterations
        view_pairs(2, 2, global_pairing)  # validates the setting
        self.global_pairing = global_pairing
        self.register_buffer("center", torch.zeros(1, out_dim))

    def teacher_targets(self, teacher: list[Tensor], teacher_temp: float) -> list[Tensor]:
        """Centred, sharpened teacher probabilities per global view, ``[B, K]`` each."""
        if self.centering == "sinkhorn_knopp":
            batch = teacher[0].shape[0]
            return list(sinkhorn_knopp(torch.cat(teacher), teacher_temp,
                                       self.sk_iterations).split(batch))
        return [F.softmax((t - self.center) / teacher_temp, dim=-1) for t in teacher]

    @staticmethod
    def cross_entropy(target: Tensor, student_logp: Tensor) -> Tensor:
        """Batch-mean of ``-Σ target · log p_student``."""
        return torch.sum(-target * student_logp, dim=-1).mean()

    def forward(self, student: list[Tensor], teacher: list[Tensor],
                teacher_temp: float) -> dict[str, Tensor]:
        """Loss terms (``loss``, ``l_cv``, ``l_dm``) and diagnostics: ``teacher_entropy`` (the
        part of the cross-entropy the student cannot lower; centring raises it early on) and
        ``kl = loss − teacher_entropy`` (how far the student is from the teacher). The centre
        is updated afterwards (running centring)."""
        targets = self.teacher_targets([t.detach().float() for t in teacher], teacher_temp)
        logp = [F.log_softmax(s.float() / self.student_temp, dim=-1) for s in student]
        cv, dm = view_pairs(len(teacher), len(student), self.global_pairing)
        cv_terms = [self.cross_entropy(targets[t], logp[s]) for t, s in cv]
        dm_terms = [self.cross_entropy(targets[t], logp[s]) for t, s in dm]
        zero = logp[0].new_zeros(())
        l_cv = torch.stack(cv_terms).mean() if cv_terms else zero
        l_dm = torch.stack(dm_terms).mean() if dm_terms else zero
        entropy = {t: self.cross_entropy(targets[t], targets[t].clamp_min(1e-12).log())
                   for t in range(len(targets))}
        if self.combine == "release":
            loss = torch.stack(cv_terms + dm_terms).mean()
            h = torch.stack([entropy[t] for t, _ in cv + dm]).mean()
        else:
            loss = l_cv + l_dm
            h = sum((torch.stack([entropy[t] for t, _ in pairs]).mean()
                     for pairs in (cv, dm) if pairs), zero)
        if self.centering == "running":
            self.update_center(teacher)
        return {"loss": loss, "l_cv": l_cv.detach(), "l_dm": l_dm.detach(),
                "teacher_entropy": h.detach(), "kl": (loss - h).detach()}

    @torch.no_grad()
    def update_center(self, teacher: list[Tensor]) -> None:
        """``center ← m·center + (1−m)·mean(teacher outputs)``, averaged over processes."""
        batch_mean = torch.cat(teacher).float().mean(dim=0, keepdim=True)
        batch_mean = all_reduce_mean(batch_mean)
        self.center.mul_(self.center_momentum).add_(batch_mean, alpha=1 - self.center_momentum)
