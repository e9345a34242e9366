"""The iBOT masked-patch loss (as in DINOv2): at the tokens hidden from the student, the student's
patch-head outputs are matched to the teacher's (which saw the whole clip), with a cross-entropy
against centred, sharpened teacher targets. The loss owns its own centre."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from endofm.ssl.sinkhorn import CENTERINGS, sinkhorn_knopp
from endofm.utils.distributed import all_reduce_sum


def masked_token_weights(masks: Tensor) -> Tensor:
    """``[M]`` weights of the masked tokens of ``masks`` ``[C, L]`` (in ``masks[masks]``
    order): ``1 / (masked tokens of its crop)``, so every masked crop counts once."""
    per_crop = masks.sum(dim=1, keepdim=True).clamp_min(1).float()
    return (1.0 / per_crop).expand_as(masks)[masks]


class IBOTPatchLoss(nn.Module):
    """``forward(student, teacher, masks, teacher_temp)`` with the patch-head outputs ``[M, K]``
    of the ``M`` masked tokens of ``masks``, a list of bool ``[C_v, L_v]`` (``C_v`` crops of
    ``L_v`` tokens; rows in the order of ``masks[v][masks[v]]``, list after list); ``C`` is
    the total number of crops.

    The loss is ``Σ_masked w · H(target, p_student) / C``: each masked crop contributes its
    mean cross-entropy, averaged over *all* ``C`` crops (unmasked crops add 0), as DINOv2.
    ``centering="running"`` subtracts a centre updated as an EMA of the mean masked teacher
    output (over all processes); ``"sinkhorn_knopp"`` uses :func:`sinkhorn_knopp` instead.
    """

    def __init__(self, out_dim: int, student_temp: float = 0.1, center_momentum: float = 0.9,
                 centering: str = "running", sk_iterations: int = 3) -> None:
        super().__init__()
        if centering not in CENTERINGS:
            raise ValueError(f"centering must be one of {CENTERINGS}, got {centering!r}")
        self.student_temp, self.center_momentum = student_temp, center_momentum
        self.centering, self.sk_iterations = centering, sk_iterations
        self.register_buffer("center", torch.zeros(1, out_dim))

    @torch.no_grad()
    def teacher_targets(self, teacher: Tensor, teacher_temp: float) -> Tensor:
        """Teacher probabilities ``[M, K]`` for teacher outputs ``[M, K]``."""
        teacher = teacher.float()
        if self.centering == "sinkhorn_knopp":
            return sinkhorn_knopp(teacher, teacher_temp, self.sk_iterations)
        return F.softmax((teacher - self.center) / teacher_temp, dim=-1)

    def forward(self, student: Tensor, teacher: Tensor, masks: Sequence[Tensor],
                teacher_temp: float) -> dict[str, Tensor]:
        """``loss`` and ``kl`` (the loss minus the teacher targets' own entropy, i.e. the part the
        student can lower; 0 when the student's distribution equals the targets). The running
        centre is updated afterwards."""
        targets = self.teacher_targets(teacher.detach(), teacher_temp)
        weights = torch.cat([masked_token_weights(m) for m in masks]).to(student.device)
        logp = F.log_softmax(student.float() / self.student_temp, dim=-1)
        crops = sum(m.shape[0] for m in masks)
        loss = (weights * torch.sum(-targets * logp, dim=-1)).sum() / crops
        entropy = (weights * torch.sum(-targets * targets.clamp_min(1e-12).log(), dim=-1)).sum()
        if self.centering == "running":
            self.update_center(teacher)
        return {"loss": loss, "kl": (loss - entropy / crops).detach()}

    @torch.no_grad()
    def update_center(self, teacher: Tensor) -> None:
        """``center ← m·center + (1−m)·mean(masked teacher outputs over all processes)``; no
        change when no process has a masked token."""
        total = all_reduce_sum(teacher.detach().float().sum(dim=0, keepdim=True))
        count = all_reduce_sum(torch.tensor(float(teacher.shape[0]), device=teacher.device))
        if count.item() == 0:
            return
        self.center.mul_(self.center_momentum).add_(total / count,
                                                    alpha=1 - self.center_momentum)
