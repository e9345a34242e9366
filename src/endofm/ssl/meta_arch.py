"""Student and EMA teacher: the same backbone + DINO head; the teacher sees the global views,
the student all views, batched by shape (one forward per distinct view shape)."""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from endofm.data.views import group_by_shape
from endofm.models import VisionTransformer
from endofm.ssl.head import DINOHead


class Encoder(nn.Module):
    """Backbone + head: ``[N, 3, T, S, S] -> [N, K]``. Keys ``backbone.*`` / ``head.*``."""

    def __init__(self, backbone: VisionTransformer, head: DINOHead) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.backbone(x))


def forward_views(encoder: nn.Module, views: list[Tensor]) -> list[Tensor]:
    """Run ``encoder`` on V batched views ``[B, 3, T_v, S_v, S_v]`` with one forward per shape.

    Returns V outputs ``[B, K]`` in view order.
    """
    batch = views[0].shape[0]
    outputs: list[Tensor | None] = [None] * len(views)
    for indices, stacked in group_by_shape(views):
        for k, chunk in zip(indices, encoder(stacked).split(batch), strict=True):
            outputs[k] = chunk
    return outputs  # type: ignore[return-value]


TEACHER_MODES = ("eval", "release")


class SSLMetaArch(nn.Module):
    """``student`` and ``teacher`` encoders; the teacher starts as a copy of the student and
    takes no gradients (it moves only by :meth:`update_teacher`).

    ``teacher="eval"``: the teacher has no drop path and always stays in eval mode (DINOv2).
    ``teacher="release"``: the teacher keeps the student's drop path rate and follows the
    student's train/eval mode, so in training its targets are computed with drop path active
    (the release never calls ``eval()`` on its teacher).
    """

    def __init__(self, student: Encoder, num_global: int = 2, teacher: str = "eval") -> None:
        super().__init__()
        if teacher not in TEACHER_MODES:
            raise ValueError(f"teacher must be one of {TEACHER_MODES}, got {teacher!r}")
        self.num_global = num_global
        self.teacher_mode = teacher
        self.student = student
        self.teacher = copy.deepcopy(student)
        if teacher == "eval":
            for m in self.teacher.modules():
                if hasattr(m, "drop_prob"):
                    m.drop_prob = 0.0
        self.teacher.requires_grad_(False)
        self.train(student.training)

    def train(self, mode: bool = True) -> SSLMetaArch:
        self.training = mode
        self.student.train(mode)
        self.teacher.train(mode and self.teacher_mode == "release")
        return self

    def forward(self, views: list[Tensor], student: nn.Module | None = None
                ) -> tuple[list[Tensor], list[Tensor]]:
        """(student outputs for all views, teacher outputs for the global views).

        ``student`` runs the student instead of ``self.student`` (its DDP wrapper in distributed
        runs)."""
        with torch.no_grad():
            teacher = forward_views(self.teacher, views[: self.num_global])
        return forward_views(student or self.student, views), teacher

    @torch.no_grad()
    def update_teacher(self, momentum: float) -> None:
        """EMA: ``teacher ← m·teacher + (1−m)·student`` over all parameters."""
        t = list(self.teacher.parameters())
        s = [p.detach() for p in self.student.parameters()]
        torch._foreach_mul_(t, momentum)
        torch._foreach_add_(t, s, alpha=1 - momentum)
