"""The pre-training objective: Endo-FM's L_cv + L_dm, plus the successor's optional terms
(EndoFM-LV / DINOv2): an iBOT masked-patch loss and a KoLeo regulariser, each with a weight
(0 = off); either centring (running or Sinkhorn-Knopp) for the DINO and iBOT targets."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from endofm.ssl.ibot import IBOTPatchLoss
from endofm.ssl.koleo import koleo_loss
from endofm.ssl.loss import STLoss
from endofm.ssl.masking import BlockMaskConfig, view_masks
from endofm.ssl.meta_arch import SSLMetaArch, SSLOutputs


def mask_config(loss_cfg: Any) -> BlockMaskConfig:
    """The block-mask settings of a ``loss`` config section."""
    return BlockMaskConfig(ratio_range=tuple(loss_cfg.ibot_mask_ratio),
                           probability=loss_cfg.ibot_mask_probability,
                           mode=loss_cfg.ibot_mask_mode)


class SSLObjective(nn.Module):
    """``forward(outputs, masks, teacher_temp)`` → loss terms. ``loss`` is
    ``L_dino + ibot_weight · L_ibot + koleo_weight · L_koleo``; ``dino_loss``, ``ibot``,
    ``ibot_kl`` and ``koleo`` are logged when their term is on, next to the DINO diagnostics
    (``l_cv``, ``l_dm``, ``teacher_entropy``, ``kl``)."""

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

    def draw_masks(self, global_views: list[Tensor], patch_size: int,
                   gen: torch.Generator) -> list[Tensor]:
        """Block masks (bool ``[B, h*w*T_v]``) for the global views ``[B, 3, T_v, S, S]``; all
        empty when the iBOT term is off (KoLeo alone needs no mask)."""
        b = global_views[0].shape[0]
        frames = [v.shape[2] for v in global_views]
        h, w = (s // patch_size for s in global_views[0].shape[-2:])
        if self.ibot is None:
            return [torch.zeros(b, h * w * t, dtype=torch.bool) for t in frames]
        return view_masks(b, frames, h, w, self.masks, gen)

    def forward(self, outputs: SSLOutputs, masks: list[Tensor],
                teacher_temp: float) -> dict[str, Tensor]:
        terms = self.dino(outputs.student, outputs.teacher, teacher_temp)
        if not self.extended:
            return terms
        total = terms["loss"]
        terms["dino_loss"] = total.detach()
        if self.ibot is not None:
            ibot = self.ibot(outputs.student_patch, outputs.teacher_patch, masks, teacher_temp)
            total = total + self.ibot_weight * ibot["loss"]
            terms["ibot"], terms["ibot_kl"] = ibot["loss"].detach(), ibot["kl"]
        if self.koleo_weight > 0:
            koleo = self.koleo(outputs.student_cls)
            total = total + self.koleo_weight * koleo
            terms["koleo"] = koleo.detach()
        terms["loss"] = total
        return terms

    @staticmethod
    def koleo(cls_per_view: list[Tensor]) -> Tensor:
        """KoLeo summed over the global views (each on this process's ``[B, D]`` CLS features,
        as DINOv2); 0 for a batch of one clip, which has no neighbour."""
        if cls_per_view[0].shape[0] < 2:
            return cls_per_view[0].new_zeros((), dtype=torch.float32)
        return torch.stack([koleo_loss(c) for c in cls_per_view]).sum()


def ssl_forward(objective: SSLObjective, meta: SSLMetaArch, views: list[Tensor],
                      gen: torch.Generator, student: nn.Module | None = None
                      ) -> tuple[SSLOutputs, list[Tensor]]:
    """The forward ``objective`` needs on a batch of ``views``: the plain one of the release's
    recipe, or (with iBOT / KoLeo on) the masked one with block masks for the global views
    drawn from ``gen``. Returns the outputs and the masks (empty for the plain forward)."""
    if not objective.extended:
        student_out, teacher_out = meta(views, student)
        return SSLOutputs(student_out, teacher_out, [], None, None), []
    g = meta.num_global
    masks = objective.draw_masks(views[:g], meta.student.backbone.patch_size, gen)
    masks = [m.to(views[0].device) for m in masks]
    return meta.forward_masked(views, masks, student, objective.mask_input), masks
