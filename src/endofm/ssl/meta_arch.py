"""The pre-training step's owner: student and EMA teacher (the same backbone + DINO head; the
teacher sees the global views, the student all views, batched by shape), the objective and
the iBOT block masks. :meth:`SSLMetaArch.forward` turns a batch of views into the loss terms;
the trainer schedules, backpropagates, steps the optimiser, moves the teacher and logs."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from endofm.data.views import group_by_shape
from endofm.models import VisionTransformer
from endofm.models.vision_transformer import require_per_frame_tokens
from endofm.ssl.config import TeacherMode
from endofm.ssl.head import DINOHead
from endofm.ssl.masking import view_masks
from endofm.ssl.objective import LossTerms, SSLObjective, SSLOutputs


@dataclass
class MaskedOutput:
    """One masked forward of ``B`` clips: head outputs of the CLS token ``logits`` ``[B, K]``,
    the backbone's CLS features ``cls`` ``[B, D]``, and the patch-head outputs ``patch``
    ``[M, K]`` of the ``M`` tokens set in the masks (in ``masks[masks]`` order)."""

    logits: Tensor
    cls: Tensor
    patch: Tensor


class Encoder(nn.Module):
    """Backbone + head. Keys ``backbone.*`` / ``head.*``, and ``patch_head.*`` when
    masked-patch training uses a separate patch head (else the DINO head is shared by CLS and
    patch tokens)."""

    def __init__(self, backbone: VisionTransformer, head: DINOHead,
                 patch_head: DINOHead | None = None) -> None:
        super().__init__()
        if backbone.mask_token is not None or patch_head is not None:
            require_per_frame_tokens(backbone, "masked-patch training (loss.ibot_weight > 0)")
        self.backbone, self.head = backbone, head
        self.patch_head = patch_head

    def forward(self, x: Tensor) -> Tensor:
        """The CLS head outputs: ``[N, 3, T, S, S] -> [N, K]``."""
        return self.head(self.backbone(x))

    def forward_masked(self, x: Tensor, masks: Tensor, mask_input: bool = True) -> MaskedOutput:
        """``x`` ``[N, 3, T, S, S]`` with ``masks`` (bool ``[N, h*w*T]``, token order): the
        patch outputs are taken at the masked tokens; with ``mask_input`` those tokens are
        hidden behind the backbone's mask token (the student), without it the clip is seen
        whole (the teacher)."""
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

    def compile(self, *args: Any, **kwargs: Any) -> None:
        """``torch.compile`` both entry points, :meth:`forward` (through the module's call)
        and :meth:`forward_masked`, with the same arguments."""
        super().compile(*args, **kwargs)
        self.forward_masked = torch.compile(self.forward_masked, *args, **kwargs)


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
class SSLStep:
    """What :meth:`SSLMetaArch.forward` hands the trainer: the loss terms, and the teacher's
    side of the step for the collapse monitor: its head outputs per global view (``teacher``,
    ``[B, K]`` each, detached), the running centre they were centred with (``teacher_center``
    ``[1, K]``, as before the step updated it) and its backbone CLS features per global view
    when the forward was masked (``teacher_cls``; empty for the plain forward)."""

    loss: LossTerms
    teacher: list[Tensor]
    teacher_center: Tensor
    teacher_cls: list[Tensor]


class SSLMetaArch(nn.Module):
    """``student`` and ``teacher`` encoders and the ``objective``; the teacher starts as a
    copy of the student and takes no gradients (it moves only by :meth:`update_teacher`).

    ``teacher=eval``: the teacher has no drop path and always stays in eval mode (DINOv2).
    ``teacher=release``: the teacher keeps the student's drop path rate and follows the
    student's train/eval mode, so in training its targets are computed with drop path active
    (the release never calls ``eval()`` on its teacher).

    Args:
        student: The student encoder (backbone with a mask token when the iBOT term is on).
        objective: The loss terms and the settings of their masks.
        num_global: The first ``num_global`` views are the global ones.
        teacher: The teacher mode (:class:`~endofm.ssl.config.TeacherMode`).
    """

    def __init__(self, student: Encoder, objective: SSLObjective, num_global: int = 2,
                 teacher: TeacherMode | str = TeacherMode.eval) -> None:
        super().__init__()
        if teacher not in set(TeacherMode):
            raise ValueError(f"teacher must be one of {[m.value for m in TeacherMode]}, "
                             f"got {teacher!r}")
        self.num_global = num_global
        self.teacher_mode = TeacherMode(teacher)
        self.student = student
        self.teacher = copy.deepcopy(student)
        if self.teacher_mode is TeacherMode.eval:
            for m in self.teacher.modules():
                if hasattr(m, "drop_prob"):
                    m.drop_prob = 0.0
        self.teacher.requires_grad_(False)
        self.objective = objective
        self.train(student.training)

    def train(self, mode: bool = True) -> SSLMetaArch:
        self.training = mode
        self.student.train(mode)
        self.teacher.train(mode and self.teacher_mode is TeacherMode.release)
        self.objective.train(mode)
        return self

    def forward(self, views: list[Tensor], teacher_temp: float,
                gen: torch.Generator) -> SSLStep:
        """One step's loss on a batch of views ``[B, 3, T_v, S_v, S_v]`` (the global ones
        first): the plain forward of the release's recipe, or (with iBOT / KoLeo on) the masked
        one with block masks for the global views drawn from ``gen``; then the objective at
        ``teacher_temp``, in float32 outside any autocast region (which updates the running
        centres)."""
        if self.objective.extended:
            masks = self.draw_masks(views[: self.num_global], gen)
            outputs = self.forward_masked(views, masks, self.objective.mask_input)
        else:
            masks, outputs = [], self.forward_plain(views)
        center = self.objective.dino.center.clone()
        with torch.autocast(views[0].device.type, enabled=False):
            loss = self.objective(outputs, masks, teacher_temp)
        return SSLStep(loss, [t.detach() for t in outputs.teacher], center, outputs.teacher_cls)

    def draw_masks(self, global_views: list[Tensor], gen: torch.Generator) -> list[Tensor]:
        """Block masks (bool ``[B, h*w*T_v]``, on the views' device) for the global views
        ``[B, 3, T_v, S, S]``; all empty when the iBOT term is off (KoLeo alone needs none)."""
        b, device = global_views[0].shape[0], global_views[0].device
        frames = [v.shape[2] for v in global_views]
        h, w = (s // self.student.backbone.patch_size for s in global_views[0].shape[-2:])
        if self.objective.ibot is None:
            return [torch.zeros(b, h * w * t, dtype=torch.bool, device=device) for t in frames]
        masks = view_masks(b, frames, h, w, self.objective.masks, gen)
        return [m.to(device) for m in masks]

    def forward_plain(self, views: list[Tensor]) -> SSLOutputs:
        """The release's forward: the student's head outputs for all views and the teacher's
        for the global views (no masks, no CLS features)."""
        with torch.no_grad():
            teacher = forward_views(self.teacher, views[: self.num_global])
        return SSLOutputs(forward_views(self.student, views), teacher)

    def forward_masked(self, views: list[Tensor], masks: list[Tensor],
                       mask_input: bool = True) -> SSLOutputs:
        """The forward of masked-patch / KoLeo training: global view ``v`` with ``masks[v]``
        (bool ``[B, h*w*T_v]``) through the teacher (whole) and the student (masked when
        ``mask_input``); local views through the student as in :meth:`forward_plain`."""
        g = self.num_global
        with torch.no_grad():
            teacher = [self.teacher.forward_masked(v, m, mask_input=False)
                       for v, m in zip(views[:g], masks, strict=True)]
        globals_ = [self.student.forward_masked(v, m, mask_input=mask_input)
                    for v, m in zip(views[:g], masks, strict=True)]
        local = forward_views(self.student, views[g:]) if len(views) > g else []
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
