"""The pre-training objective: Endo-FM's L_cv + L_dm, plus the successor's optional terms
(EndoFM-LV / DINOv2): an iBOT masked-patch loss and a KoLeo regulariser, each with a weight
(0 = off); either centring (running or Sinkhorn-Knopp) for the DINO and iBOT targets.

:class:`SSLObjective` turns the forward outputs of a step (:class:`SSLOutputs`) into
:class:`LossTerms`; :class:`~endofm.ssl.meta_arch.SSLMetaArch` owns it and runs it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from endofm.ssl.ibot import IBOTPatchLoss
from endofm.ssl.koleo import koleo_loss
from endofm.ssl.loss import STLoss
from endofm.ssl.masking import BlockMaskConfig


def mask_config(loss_cfg: Any) -> BlockMaskConfig:
    """The block-mask settings of a ``loss`` config section."""
    return BlockMaskConfig(ratio_range=tuple(loss_cfg.ibot_mask_ratio),
                           probability=loss_cfg.ibot_mask_probability,
                           mode=loss_cfg.ibot_mask_mode)


@dataclass
class SSLOutputs:
    """The forward outputs of one step: head outputs per view (``student``, V of ``[B, K]``)
    and per global view (``teacher``), the student's backbone CLS features per global view
    (``student_cls``, ``[B, D]`` each), and the patch-head outputs at the masked tokens of all
    global views, view after view (``student_patch`` / ``teacher_patch``, ``[M, K]``).
    ``teacher_cls``: the teacher's backbone CLS features per global view (the masked forward
    goes through ``forward_features``, which a forward hook on the backbone does not see;
    empty for the plain forward). The masked fields are empty / ``None`` for the plain
    forward."""

    student: list[Tensor]
    teacher: list[Tensor]
    student_cls: list[Tensor] = field(default_factory=list)
    student_patch: Tensor | None = None
    teacher_patch: Tensor | None = None
    teacher_cls: list[Tensor] = field(default_factory=list)


@dataclass
class LossTerms:
    """The loss of one step by name.

    ``terms``: the weighted parts of the loss, each a scalar with its graph (``dino``, and
    ``ibot`` / ``koleo`` when their weight is on); ``total``: their sum, the loss to
    backpropagate. ``logs``: detached scalars for the log, the DINO diagnostics (``l_cv``,
    ``l_dm``, ``teacher_entropy``, ``kl``) and, with a term beyond the release's on,
    ``dino_loss`` and the unweighted ``ibot``, ``ibot_kl`` and ``koleo``.
    """

    terms: dict[str, Tensor]
    logs: dict[str, Tensor]
    total: Tensor = field(init=False)

    def __post_init__(self) -> None:
        parts = list(self.terms.values())
        total = parts[0]
        for part in parts[1:]:  # added in order: the release's sum when only ``dino`` is on
            total = total + part
        self.total = total

    def values(self) -> dict[str, float]:
        """``loss`` (the total) and the logged scalars as floats."""
        return {"loss": self.total.item()} | {k: v.item() for k, v in self.logs.items()}


class SSLObjective(nn.Module):
    """``forward(outputs, masks, teacher_temp)`` → :class:`LossTerms`:
    ``L_dino + ibot_weight · L_ibot + koleo_weight · L_koleo``. Also the settings of the masks
    the iBOT term needs (``masks``; ``mask_input``: whether the student's input is masked)."""

    def __init__(self, out_dim: int, loss_cfg: Any) -> None:
        super().__init__()
        c = loss_cfg
        self.dino = STLoss(out_dim, c.student_temp, c.center_momentum, c.combine, c.centering,
                           c.sk_iterations, c.global_pairing)
        self.ibot = (IBOTPatchLoss(out_dim, c.student_temp, c.center_momentum, c.centering,
                                   c.sk_iterations) if c.ibot_weight > 0 else None)
        self.ibot_weight, self.koleo_weight = float(c.ibot_weight), float(c.koleo_weight)
        self.masks = mask_config(c)
        self.mask_input = bool(c.ibot_mask_input) and self.ibot is not None

    @property
    def extended(self) -> bool:
        """Whether any term beyond the release's is on (they need the masked forward)."""
        return self.ibot is not None or self.koleo_weight > 0

    def forward(self, outputs: SSLOutputs, masks: list[Tensor],
                teacher_temp: float) -> LossTerms:
        """The loss terms of ``outputs`` (``masks``: the global views' masks, bool
        ``[B, h*w*T_v]`` each; empty for the plain forward). Updates the running centres."""
        logs = self.dino(outputs.student, outputs.teacher, teacher_temp)
        terms = {"dino": logs.pop("loss")}
        if self.ibot is not None:
            ibot = self.ibot(outputs.student_patch, outputs.teacher_patch, masks, teacher_temp)
            terms["ibot"] = self.ibot_weight * ibot["loss"]
            logs["ibot"], logs["ibot_kl"] = ibot["loss"].detach(), ibot["kl"]
        if self.koleo_weight > 0:
            koleo = self.koleo(outputs.student_cls)
            terms["koleo"] = self.koleo_weight * koleo
            logs["koleo"] = koleo.detach()
        if self.extended:
            logs["dino_loss"] = terms["dino"].detach()
        return LossTerms(terms, logs)

    @staticmethod
    def koleo(cls_per_view: list[Tensor]) -> Tensor:
        """KoLeo summed over the global views (each on this process's ``[B, D]`` CLS features,
        as DINOv2); 0 for a batch of one clip, which has no neighbour."""
        if cls_per_view[0].shape[0] < 2:
            return cls_per_view[0].new_zeros((), dtype=torch.float32)
        return torch.stack([koleo_loss(c) for c in cls_per_view]).sum()
