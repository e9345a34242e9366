"""Collapse diagnostics for pre-training, logged every ``train.log_every`` steps.

- ``entropy_ratio``: the teacher targets' entropy over ``ln K`` (1 = uniform: the centring has
  flattened every target and the student learns nothing but "output uniform");
- ``kl``: the student's KL to the teacher (the part of the loss the student can still lower);
- ``effective_prototypes``: ``exp(entropy)`` of the histogram of the teacher's argmax prototype
  over the batch's global views (1 = every clip lands on the same prototype);
- ``embedding_std``: the per-dimension standard deviation of the teacher's L2-normalised backbone
  embeddings, averaged over dimensions, times ``sqrt(D)`` (about 1 for embeddings spread over
  the sphere, 0 for identical embeddings). The raw value is ``embedding_std_raw``.

:class:`CollapseMonitor` warns once a run shows collapse for ``collapse.patience`` consecutive
log steps: ``entropy_ratio > collapse.max_entropy_ratio`` or
``embedding_std < collapse.min_embedding_std``.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from endofm.utils.figures import save_figure


class CollapseWarning(UserWarning):
    """Pre-training shows the signs of a collapsed representation."""


@dataclass
class CollapseConfig:
    # collapse: teacher targets' entropy / ln K above this (1: uniform)
    max_entropy_ratio: float = 0.95
    min_embedding_std: float = 0.1  # × 1/sqrt(D): the spread of the normalised embeddings
    patience: int = 20  # consecutive log steps before the warning


def effective_prototypes(teacher: Sequence[Tensor], center: Tensor) -> float:
    """``exp(entropy)`` of the argmax histogram of centred teacher outputs ``[B, K]`` (all
    views together): between 1 and the number of rows."""
    picks = torch.cat([t.detach().float() for t in teacher]).sub(center).argmax(-1)
    freq = torch.bincount(picks).float() / len(picks)
    freq = freq[freq > 0]
    return float(torch.exp(-(freq * freq.log()).sum()))


def embedding_std(embeddings: Tensor) -> tuple[float, float]:
    """(std × sqrt(D), raw std): the mean per-dimension std of L2-normalised ``[N, D]``."""
    if len(embeddings) < 2:
        return float("nan"), float("nan")
    std = float(F.normalize(embeddings.detach().float(), dim=-1).std(0).mean())
    return std * math.sqrt(embeddings.shape[-1]), std


class CollapseMonitor:
    """Computes the diagnostics each step and warns on a lasting collapse.

    ``backbone`` is the teacher backbone: inside :meth:`watch` a forward hook keeps its outputs
    (the global views' embeddings ``[B, D]`` per forward) for ``embedding_std``. A forward that
    bypasses ``backbone.forward`` (the masked forward of iBOT / KoLeo training calls
    ``forward_features``) passes its embeddings to :meth:`observe` instead.
    """

    def __init__(self, backbone: nn.Module, out_dim: int, cfg: CollapseConfig) -> None:
        self.backbone, self.cfg, self.log_k = backbone, cfg, math.log(out_dim)
        self.embeddings: list[Tensor] = []
        self.prototypes = float("nan")
        self.streak, self.warned = 0, False

    @contextlib.contextmanager
    def watch(self) -> Iterator[None]:
        """Keep the backbone's outputs of the forwards run inside the block."""
        self.embeddings = []
        handle = self.backbone.register_forward_hook(
            lambda _m, _i, out: self.embeddings.append(out.detach()))
        try:
            yield
        finally:
            handle.remove()

    def observe(self, teacher: Sequence[Tensor], center: Tensor,
                embeddings: Sequence[Tensor] = ()) -> None:
        """Record the teacher outputs of this step (call before the loss updates the centre)
        and, if given, the teacher backbone's embeddings of the global views (``[B, D]`` each;
        they replace what the hook kept)."""
        self.prototypes = effective_prototypes(teacher, center)
        if embeddings:
            self.embeddings = [e.detach() for e in embeddings]

    def stats(self, terms: Mapping[str, Tensor]) -> dict[str, float]:
        """This step's diagnostics from the loss terms (``teacher_entropy``, ``kl``)."""
        std, raw = embedding_std(torch.cat(self.embeddings)) if self.embeddings else (
            float("nan"), float("nan"))
        return {"entropy_ratio": float(terms["teacher_entropy"]) / self.log_k,
                "kl": float(terms["kl"]), "effective_prototypes": self.prototypes,
                "embedding_std": std, "embedding_std_raw": raw}

    def check(self, record: Mapping[str, float], step: int) -> str | None:
        """Count a logged step; returns (and warns with) the message the first time the
        collapse signs have lasted ``patience`` log steps."""
        reasons = []
        if record["entropy_ratio"] > self.cfg.max_entropy_ratio:
            reasons.append(f"teacher entropy / ln K = {record['entropy_ratio']:.3f} > "
                           f"{self.cfg.max_entropy_ratio}")
        if record["embedding_std"] < self.cfg.min_embedding_std:
            reasons.append(f"embedding std x sqrt(D) = {record['embedding_std']:.3f} < "
                           f"{self.cfg.min_embedding_std}")
        self.streak = self.streak + 1 if reasons else 0
        if self.warned or self.streak < self.cfg.patience:
            return None
        self.warned = True
        message = (f"pre-training looks collapsed at step {step}: {' and '.join(reasons)} for "
                   f"{self.streak} log steps. The teacher's targets carry no information; "
                   "train longer, lower loss.teacher_temp, raise the batch or the head's "
                   "out_dim, or lower loss.center_momentum (see README, pre-training).")
        warnings.warn(message, CollapseWarning, stacklevel=2)
        return message


CURVE_PANELS = (("loss", "l_cv", "l_dm"), ("entropy_ratio",), ("kl",), ("effective_prototypes",),
                ("embedding_std",))


def plot_pretrain_curves(rows: Sequence[Mapping[str, object]], out_path: str | Path) -> Path:
    """One panel per group of :data:`CURVE_PANELS` against ``step`` in a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(CURVE_PANELS), figsize=(4 * len(CURVE_PANELS), 3.4))
    for ax, keys in zip(axes, CURVE_PANELS, strict=True):
        for key in keys:
            pts = [(r["step"], r[key]) for r in rows if key in r and "step" in r]
            if pts:
                ax.plot(*zip(*pts, strict=True), label=key)
        ax.set_xlabel("step")
        ax.set_title(", ".join(keys))
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend()
    fig.suptitle("pre-training")
    fig.tight_layout()
    return save_figure(fig, out_path)
