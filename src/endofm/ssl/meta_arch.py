"""Student and EMA teacher: the same backbone + DINO head; the teacher sees the global views,
the student all views, batched by shape (one forward per distinct view shape)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from endofm.data.views import group_by_shape
from endofm.models import VisionTransformer
from endofm.models.vision_transformer import require_per_frame_tokens
from endofm.ssl.head import DINOHead


@dataclass
class MaskedOutput:
    """One masked forward of ``B`` clips: head outputs of the CLS token ``logits`` ``[B, K]``,
    the backbone's CLS features ``cls`` ``[B, D]``, and the patch-head outputs ``patch``
    ``[M, K]`` of the ``M`` tokens set in the masks (in ``masks[masks]`` order)."""

    logits: Tensor
    cls: Tensor
    patch: Tensor


class Encoder(nn.Module):
    """Backbone + head: ``[N, 3, T, S, S] -> [N, K]``. Keys ``backbone.*`` / ``head.*``, and
    ``patch_head.*`` when masked-patch training uses a separate patch head (else the DINO head
    is shared by CLS and patch tokens)."""

    def __init__(self, backbone: VisionTransformer, head: DINOHead,
                 patch_head: DINOHead | None = None) -> None:
        super().__init__()
        if backbone.mask_token is not None or patch_head is not None:
            require_per_frame_tokens(backbone, "masked-patch training (loss.ibot_weight > 0)")
        self.backbone, self.head = backbone, head
        self.patch_head = patch_head

    def forward(self, x: Tensor, masks: Tensor | None = None,
                mask_input: bool = True) -> Tensor | MaskedOutput:
        """Without ``masks``: the CLS head outputs ``[N, K]``. With ``masks`` (bool
        ``[N, h*w*T]``, token order): a :class:`MaskedOutput` whose patch outputs are taken at the
        masked tokens; with ``mask_input`` those tokens are hidden behind the backbone's mask
        token (the student), without it the clip is seen whole (the teacher)."""
        if masks is None:
            return self.head(self.backbone(x))
        tokens = self.backbone.forward_features(x, masks if mask_input else None)
        cls = tokens[:, 0]
        patch_head = self.patch_head if self.patch_head is not None else self.head
        return MaskedOutput(self.head(cls), cls, patch_head(self.masked_patches(tokens, masks)))

    def masked_patches(self, tokens: Tensor, masks: Tensor) -> Tensor:
        """The patch tokens ``[M, D]`` of ``tokens`` ``[N, 1 + h*w*T, D]`` at the ``M`` tokens
        set in ``masks`` ``[N, h*w*T]``. A ``space_only`` backbone averages the frames' tokens
        (``[N, 1 + h*w, D]``), so it has none to take: its masks must be empty (KoLeo alone
        draws none), and the result is ``[0, D]``."""
        if self.backbone.attention_type != "space_only":
            return tokens[:, 1:][masks]
        if masks.any():
            require_per_frame_tokens(self.backbone, "a masked-patch target")
        return tokens.new_zeros(0, tokens.shape[-1])


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


@dataclass
class SSLOutputs:
    """Outputs of :meth:`SSLMetaArch.forward_masked`: head outputs per view (``student``, V of
    ``[B, K]``) and per global view (``teacher``), the student's backbone CLS features per
    global view (``student_cls``, ``[B, D]`` each), and the patch-head outputs at the masked
    tokens of all global views, view after view (``student_patch`` / ``teacher_patch``,
    ``[M, K]``). ``teacher_cls``: the teacher's backbone CLS features per global view (the
    masked forward goes through ``forward_features``, which a forward hook on the backbone
    does not see; empty for the plain forward)."""

    student: list[Tensor]
    teacher: list[Tensor]
    student_cls: list[Tensor]
    student_patch: Tensor | None
    teacher_patch: Tensor | None
    teacher_cls: list[Tensor] = field(default_factory=list)


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

    def forward_masked(self, views: list[Tensor], masks: list[Tensor],
                       student: nn.Module | None = None, mask_input: bool = True) -> SSLOutputs:
        """The forward of masked-patch / KoLeo training: global view ``v`` with ``masks[v]``
        (bool ``[B, h*w*T_v]``) through the teacher (whole) and the student (masked when
        ``mask_input``); local views through the student as in :meth:`forward`."""
        g = self.num_global
        student = student or self.student
        with torch.no_grad():
            teacher = [self.teacher(v, m, mask_input=False) for v, m in zip(views[:g], masks,
                                                                              strict=True)]
        globals_ = [student(v, m, mask_input=mask_input) for v, m in zip(views[:g], masks,
                                                                           strict=True)]
        local = forward_views(student, views[g:]) if len(views) > g else []
        return SSLOutputs(student=[o.logits for o in globals_] + local,
                          teacher=[o.logits for o in teacher],
                          student_cls=[o.cls for o in globals_],
                          student_patch=torch.cat([o.patch for o in globals_]),
                          teacher_patch=torch.cat([o.patch for o in teacher]),
                          teacher_cls=[o.cls for o in teacher])

    @torch.no_grad()
    def update_teacher(self, momentum: float) -> None:
        """EMA: ``teacher ← m·teacher + (1−m)·student`` over all parameters."""
        t = list(self.teacher.parameters())
        s = [p.detach() for p in self.student.parameters()]
        torch._foreach_mul_(t, momentum)
        torch._foreach_add_(t, s, alpha=1 - momentum)
