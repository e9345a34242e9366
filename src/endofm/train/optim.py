"""Parameter groups, the optimiser and one optimiser step (grad scaler, clipping).

Weight decay follows ``model.no_weight_decay()`` (the timm/DINOv2 convention: names, relative to
the module that declares them, such as the positional tables and the CLS token) plus a rule:
biases and other 1-D tensors never decay; ``decay_embeddings=True`` decays the declared tables
too, as the release's DINO optimiser does (only biases and 1-D tensors exempt).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

import torch
from torch import Tensor, nn
from torch.amp import GradScaler


class OptimizerName(StrEnum):
    sgd = "sgd"
    adamw = "adamw"


# ``global``: one norm over all gradients (``clip_grad_norm_``); ``per_param``: each tensor's
# gradient norm clipped separately (the release's ``utils.clip_gradients``). Functional form:
# ``global`` is a keyword, and config files spell the member's name.
ClipMode = StrEnum("ClipMode", [("global", "global"), ("per_param", "per_param")])


def no_weight_decay_names(model: nn.Module) -> set[str]:
    """Full parameter names declared by ``no_weight_decay()`` of ``model`` or any submodule."""
    names: set[str] = set()
    for prefix, module in model.named_modules():
        declared = getattr(module, "no_weight_decay", None)
        if callable(declared):
            names |= {f"{prefix}.{n}" if prefix else n for n in declared()}
    return names


def skips_weight_decay(name: str, param: Tensor, declared: set[str],
                       decay_embeddings: bool = False) -> bool:
    """True for biases and 1-D tensors, and (unless ``decay_embeddings``) for ``declared``."""
    return param.ndim <= 1 or (not decay_embeddings and name in declared)


def param_groups(model: nn.Module, weight_decay: float, backbone_lr_mult: float = 1.0,
                 decay_embeddings: bool = False) -> list[dict]:
    """Groups of trainable parameters by (decays, under ``backbone.``). Each group carries
    ``wd_mult`` (1 or 0) and ``lr_mult`` (``backbone_lr_mult`` for the backbone) that
    :meth:`OptimizerStepper.set_schedules` multiplies into the scheduled values."""
    declared = no_weight_decay_names(model)
    groups: dict[tuple[bool, bool], list[Tensor]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        no_decay = skips_weight_decay(name, p, declared, decay_embeddings)
        groups.setdefault((no_decay, name.startswith("backbone.")), []).append(p)
    return [{"params": ps, "wd_mult": 0.0 if nd else 1.0,
             "weight_decay": 0.0 if nd else weight_decay,
             "lr_mult": backbone_lr_mult if bb else 1.0}
            for (nd, bb), ps in sorted(groups.items())]


def build_optimizer(name: str, groups: list[dict], lr: float, momentum: float = 0.9
                    ) -> torch.optim.Optimizer:
    """SGD (with ``momentum``) or AdamW over ``groups``."""
    if not groups:
        raise ValueError("the model has no trainable parameters")
    if name == OptimizerName.sgd:
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    if name == OptimizerName.adamw:
        return torch.optim.AdamW(groups, lr=lr)
    raise ValueError(f"optimizer must be one of {[o.value for o in OptimizerName]}, got {name!r}")


def clip_gradients(params: Iterable[Tensor], max_norm: float, mode: str = ClipMode["global"]
                   ) -> None:
    """Clip gradients in place to ``max_norm`` (``mode``: see :class:`ClipMode`)."""
    params = [p for p in params if p.grad is not None]
    if mode == ClipMode["global"]:
        nn.utils.clip_grad_norm_(params, max_norm)
        return
    if mode != ClipMode.per_param:
        raise ValueError(f"clip mode must be one of {[m.value for m in ClipMode]}, got {mode!r}")
    for p in params:
        coef = max_norm / (p.grad.detach().norm(2) + 1e-6)
        if coef < 1:
            p.grad.detach().mul_(coef)


class OptimizerStepper:
    """An optimiser with its grad scaler: ``backward(loss)`` (scaled), then ``step(params)``
    (unscale, clip, optimiser step, scaler update, zero the gradients).

    ``set_schedules(lr, wd)`` writes ``lr × lr_mult`` and ``wd × wd_mult`` into every group.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, scaler: GradScaler,
                 clip_grad: float = 0.0, clip_mode: str = ClipMode["global"]) -> None:
        self.optimizer, self.scaler = optimizer, scaler
        self.clip_grad, self.clip_mode = clip_grad, clip_mode

    def set_schedules(self, lr: float, weight_decay: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["lr_mult"]
            group["weight_decay"] = weight_decay * group["wd_mult"]

    def backward(self, loss: Tensor) -> None:
        self.scaler.scale(loss).backward()

    def clip(self, params: Iterable[Tensor]) -> None:
        """Unscale the gradients and clip them (nothing when ``clip_grad`` is 0)."""
        if self.clip_grad > 0:
            self.scaler.unscale_(self.optimizer)
            clip_gradients(params, self.clip_grad, self.clip_mode)

    def apply(self) -> None:
        """The optimiser step through the scaler; gradients are zeroed afterwards."""
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)

    def step(self, params: Iterable[Tensor]) -> None:
        self.clip(params)
        self.apply()

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
