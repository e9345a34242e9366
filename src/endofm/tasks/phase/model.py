"""A multi-stage temporal convolutional network over a video's window features (MS-TCN, as
TeCNO uses it for phases), with an optional per-window tool-presence head.

Each stage is a 1×1 convolution to ``channels``, ``layers`` dilated residual layers (kernel 3,
dilation 1, 2, 4, …, ReLU, 1×1 convolution, dropout, residual) and a 1×1 convolution to the
phase logits; stages after the first refine the softmax of the previous stage. ``causal=True``
pads on the left only (2·dilation), so the output at row ``t`` sees rows ``≤ t`` (online use);
``causal=False`` pads both sides (offline).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class DilatedResidual(nn.Module):
    """``[B, C, T]`` → ``[B, C, T]``: x + dropout(conv1x1(relu(dilated conv3(x))))."""

    def __init__(self, channels: int, dilation: int, causal: bool, dropout: float) -> None:
        super().__init__()
        self.dilation, self.causal = dilation, causal
        self.conv = nn.Conv1d(channels, channels, 3, dilation=dilation)
        self.pointwise = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        d = self.dilation
        padded = F.pad(x, (2 * d, 0) if self.causal else (d, d))
        return x + self.dropout(self.pointwise(F.relu(self.conv(padded))))


class Stage(nn.Module):
    """``[B, in, T]`` → logits ``[B, classes, T]``."""

    def __init__(self, in_dim: int, channels: int, classes: int, layers: int, causal: bool,
                 dropout: float) -> None:
        super().__init__()
        self.inp = nn.Conv1d(in_dim, channels, 1)
        self.layers = nn.ModuleList(DilatedResidual(channels, 2 ** i, causal, dropout)
                                    for i in range(layers))
        self.out = nn.Conv1d(channels, classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.inp(x)
        for layer in self.layers:
            h = layer(h)
        return self.out(h)


class PhaseTCN(nn.Module):
    """Multi-stage TCN over window features.

    Args:
        in_dim: feature size ``D``.
        num_phases: phase classes.
        stages: number of stages (the first reads the features, the others refine).
        layers: dilated residual layers per stage (receptive field ``2^(layers+1) - 1`` rows
            offline, ``2^(layers+1) - 1`` rows of the past when causal).
        channels: hidden width.
        causal: left padding only (no future rows).
        dropout: after each residual layer's 1×1 convolution.
        num_tools: tool-presence logits per row from a linear head on the features (0: none).
    """

    def __init__(self, in_dim: int, num_phases: int, stages: int = 4, layers: int = 10,
                 channels: int = 64, causal: bool = False, dropout: float = 0.5,
                 num_tools: int = 0) -> None:
        super().__init__()
        self.in_dim, self.num_phases, self.causal = in_dim, num_phases, causal
        self.input_dropout = nn.Dropout(dropout)
        self.stages = nn.ModuleList(
            Stage(in_dim if k == 0 else num_phases, channels, num_phases, layers, causal,
                  dropout) for k in range(stages))
        self.tools = nn.Conv1d(in_dim, num_tools, 1) if num_tools else None

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor | None]:
        """``features`` ``[B, D, T]`` → (phase logits of every stage ``[S, B, P, T]``, tool
        logits ``[B, K, T]`` or ``None``)."""
        x = self.input_dropout(features)
        out = self.stages[0](x)
        logits = [out]
        for stage in self.stages[1:]:
            out = stage(out.softmax(dim=1))
            logits.append(out)
        tools = self.tools(x) if self.tools is not None else None
        return torch.stack(logits), tools

    @property
    def receptive_rows(self) -> int:
        """Rows of the past a causal model's last output depends on (all stages chained)."""
        per_stage = 2 ** (len(self.stages[0].layers) + 1) - 2
        return len(self.stages) * per_stage + 1

    @torch.no_grad()
    def probabilities(self, features: Tensor) -> tuple[Tensor, Tensor | None]:
        """One video's features ``[T, D]`` → (phase probabilities of the last stage ``[T, P]``,
        tool probabilities ``[T, K]`` or ``None``)."""
        logits, tools = self(features.t().unsqueeze(0))
        phases = logits[-1, 0].softmax(dim=0).t()
        return phases, (tools[0].sigmoid().t() if tools is not None else None)


def smoothing_loss(logits: Tensor, clamp: float = 16.0) -> Tensor:
    """MS-TCN's truncated MSE between consecutive rows' log-probabilities (the previous row
    detached), ``logits`` ``[B, P, T]`` → scalar."""
    if logits.shape[-1] < 2:
        return logits.sum() * 0
    log_p = F.log_softmax(logits, dim=1)
    diff = F.mse_loss(log_p[:, :, 1:], log_p.detach()[:, :, :-1], reduction="none")
    return diff.clamp(max=clamp).mean()


def phase_loss(logits: Tensor, labels: Tensor, smooth_weight: float = 0.15,
               clamp: float = 16.0, weight: Tensor | None = None) -> Tensor:
    """Sum over stages of cross-entropy + ``smooth_weight`` × :func:`smoothing_loss`.

    Args:
        logits: ``[S, 1, P, T]`` (one video).
        labels: int64 ``[T]``.
        smooth_weight: λ of the smoothing term (MS-TCN: 0.15).
        clamp: the squared difference is truncated at this (τ² = 16).
        weight: class weights ``[P]`` for the cross-entropy (class-balanced loss) or ``None``.
    """
    total = logits.new_zeros(())
    for stage in logits:
        total = total + F.cross_entropy(stage[0].t(), labels, weight=weight)
        total = total + smooth_weight * smoothing_loss(stage, clamp)
    return total


def balanced_weights(labels: list[Tensor], num_phases: int) -> Tensor:
    """Median-frequency class weights over the training rows ``[P]`` (phases never seen get
    weight 0)."""
    counts = torch.bincount(torch.cat(labels), minlength=num_phases).double()
    freq = counts / counts.sum()
    median = freq[counts > 0].quantile(0.5)
    return torch.where(counts > 0, median / freq.clamp(min=1e-12), 0.0).float()
