"""The Endo-FM video transformer: a TimeSformer-style ViT with divided space-time attention.

Token layout everywhere in this module: ``[B, 1 + N*T, D]`` — one CLS token, then the patch
tokens of an ``h x w`` grid over ``T`` frames in (h, w, t) order with t fastest, i.e. the token
of row ``i``, column ``j``, frame ``t`` sits at index ``1 + (i*w + j)*T + t``. Parameter names
are the released ones, so released state dicts load without renaming.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp, resample_abs_pos_embed, trunc_normal_
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from endofm.models.config import ATTENTION_TYPES

NO_DECAY_PARAMS = ("pos_embed", "cls_token", "time_embed")


def resize_pos_embed(pos_embed: Tensor, grid: tuple[int, int]) -> Tensor:
    """A spatial table ``[1, 1 + g*g, D]`` (CLS entry first, kept) nearest-resized to ``grid``
    = (h, w): exactly what the release's dynamic positional encoding computes for that grid."""
    g = math.isqrt(pos_embed.shape[1] - 1)
    return resample_abs_pos_embed(pos_embed, list(grid), [g, g], num_prefix_tokens=1,
                                  interpolation="nearest", antialias=False)


def resize_time_embed(time_embed: Tensor, num_frames: int) -> Tensor:
    """A temporal table ``[1, T, D]`` nearest-resized to ``num_frames`` (as the release)."""
    resized = F.interpolate(time_embed.transpose(1, 2).float(), size=num_frames, mode="nearest")
    return resized.transpose(1, 2).to(time_embed.dtype)


class GELU(nn.GELU):
    """Exact (erf) GELU, computed in place when no gradient needs its input: a forward
    without autograd then skips allocating and page-faulting a ``[B, L, 4D]`` buffer per
    block (GELU takes half the time in place on a 2-core CPU: 3.2 vs 6.4 ms at 1569 x 3072).
    A forward hook on ``mlp.fc1`` that keeps its output without cloning it therefore finds it
    overwritten by the activation."""

    def forward(self, x: Tensor) -> Tensor:
        if x.requires_grad:
            return super().forward(x)
        return torch.ops.aten.gelu_(x)


PACKED_ROWS = {torch.float32: 16, torch.bfloat16: 32, torch.float16: 32}


def sequences_per_block(batch: int, length: int, dtype: torch.dtype) -> int:
    """How many sequences of ``length`` tokens :func:`attend` packs into one: the largest
    divisor of ``batch`` whose ``length`` multiple fits the rows of :data:`PACKED_ROWS` (1:
    none)."""
    most = PACKED_ROWS.get(dtype, 0) // max(length, 1)
    return next((g for g in range(min(most, batch), 1, -1) if batch % g == 0), 1)


def attend(q: Tensor, k: Tensor, v: Tensor, dropout_p: float = 0.0) -> Tensor:
    """``scaled_dot_product_attention`` of ``q, k, v`` ``[B, heads, L, hd]`` → ``[B, heads,
    L, hd]``.

    On a CPU without autograd, short sequences (the temporal attention's ``L = T`` frames)
    are attended :func:`sequences_per_block` at a time as one sequence with a block-diagonal
    mask: the same result, as a masked score has zero weight. PyTorch's CPU kernel handles the
    queries in blocks of up to 32 rows, and one 8-frame sequence per block leaves most of it
    idle (a ViT-B/16 8x224 clip's 196 x 12 sequences of 8 frames on 2 cores: 2.8 → 1.1 ms in
    bf16, 32 rows; 1.9 → 1.0 ms in fp32, 16 rows). Compiled and exported graphs keep the plain call.
    """
    b, heads, n, d = q.shape
    g = 1
    if (q.device.type == "cpu" and dropout_p == 0.0 and not torch.is_grad_enabled()
            and not torch.compiler.is_compiling()):
        g = sequences_per_block(b, n, q.dtype)
    if g == 1:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    block = torch.arange(g * n, device=q.device) // n
    mask = block[:, None] == block[None, :]

    def packed(t: Tensor) -> Tensor:  # [B, heads, L, hd] -> [B/g, heads, g*L, hd]
        return t.transpose(1, 2).reshape(b // g, g * n, heads, d).transpose(1, 2)

    out = F.scaled_dot_product_attention(packed(q), packed(k), packed(v), attn_mask=mask)
    return out.transpose(1, 2).reshape(b, n, heads, d).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention over ``[B, L, D]`` through ``scaled_dot_product_attention``.

    ``explicit=True`` computes softmax(q kᵀ · scale) v with plain matmuls instead (the released
    code's form; kept for benchmarks and attention maps).
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True,
                 attn_drop: float = 0.0, proj_drop: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.explicit = False

    def _qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, heads, L, hd]
        return q, k, v

    def attention_map(self, x: Tensor) -> Tensor:
        """Attention probabilities ``[B, heads, L, L]`` for input ``[B, L, D]``."""
        q, k, _ = self._qkv(x)
        return ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, L, D] -> [B, L, D]``."""
        b, n, c = x.shape
        q, k, v = self._qkv(x)
        drop = self.attn_drop if self.training else 0.0
        if self.explicit:
            attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
            out = F.dropout(attn, drop, self.training) @ v
        else:
            out = attend(q, k, v, drop)
        out = out.transpose(1, 2).reshape(b, n, c)
        return self.proj_drop(self.proj(out))


def attention_layers(module: nn.Module) -> list[Attention]:
    """Every attention layer of ``module``."""
    return [m for m in module.modules() if isinstance(m, Attention)]


def require_per_frame_tokens(backbone: nn.Module, user: str) -> None:
    """Raise ``ValueError`` naming ``user`` (e.g. ``"the detector"``) when ``backbone`` is
    ``space_only``, whose blocks average the frames' tokens: dense heads need each frame's own."""
    if getattr(backbone, "attention_type", "divided_space_time") == "space_only":
        raise ValueError(f"{user} needs each frame's own tokens, which a space_only backbone "
                         "averages away (use attention_type 'divided_space_time' or "
                         "'joint_space_time')")


def per_frame(cls: Tensor, patches: Tensor, t: int) -> Tensor:
    """Spatial attention's input: ``cls`` ``[B, 1, D]`` and ``patches`` ``[B, N*T, D]`` in
    (N T) order → ``[B*T, 1 + N, D]``, each frame's patches after a copy of the CLS token
    (one pass over the tokens)."""
    b, _, d = patches.shape
    frames = patches.view(b, -1, t, d).transpose(1, 2)  # [B, T, N, D], a view
    return torch.cat([cls.unsqueeze(1).expand(b, t, 1, d), frames], dim=2).view(b * t, -1, d)


class Block(nn.Module):
    """One pre-norm transformer block over ``[B, 1 + N*T, D]`` tokens.

    ``divided_space_time``: temporal attention per location (CLS excluded) → ``temporal_fc``;
    then spatial attention per frame over [CLS, N tokens] with the per-frame CLS outputs
    averaged back; then the MLP. ``space_only`` / ``joint_space_time`` are plain ViT blocks
    (over ``[B*T, 1+N, D]`` frames, or over all tokens at once).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop: float = 0.0, attn_drop: float = 0.0, drop_path: float = 0.0,
                 attention_type: str = "divided_space_time") -> None:
        super().__init__()
        self.attention_type = attention_type
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias, attn_drop, drop)
        if attention_type == "divided_space_time":
            self.temporal_norm1 = nn.LayerNorm(dim, eps=1e-6)
            self.temporal_attn = Attention(dim, num_heads, qkv_bias, attn_drop, drop)
            self.temporal_fc = nn.Linear(dim, dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=GELU, drop=drop)

    def forward(self, x: Tensor, num_frames: int) -> Tensor:
        """``[B, 1 + N*T, D] -> [B, 1 + N*T, D]`` (``[B*T, 1+N, D]`` for ``space_only``)."""
        if self.attention_type != "divided_space_time":
            x = x + self.drop_path(self.attn(self.norm1(x)))
            return x + self.drop_path(self.mlp(self.norm2(x)))
        b, _, d = x.shape
        t = num_frames
        cls, patches = x[:, :1], x[:, 1:]
        n = patches.shape[1] // t
        # temporal: [B, (N T), D] -> [(B N), T, D]
        xt = patches.reshape(b * n, t, d)
        res_t = self.drop_path(self.temporal_attn(self.temporal_norm1(xt))).reshape(b, n * t, d)
        xt = patches + self.temporal_fc(res_t)
        res_s = self.drop_path(self.attn(self.norm1(per_frame(cls, xt, t))))
        res_s = res_s.view(b, t, 1 + n, d)
        # the per-frame CLS outputs averaged; each patch's output back to (N T) order, added
        # to its input as it is read (one pass, like the concatenation after it)
        res_cls = res_s[:, :, 0].mean(dim=1, keepdim=True)
        patches = xt.view(b, n, t, d) + res_s[:, :, 1:].transpose(1, 2)
        x = torch.cat([cls + res_cls, patches.reshape(b, n * t, d)], dim=1)
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def spatial_attention_map(self, x: Tensor, num_frames: int) -> Tensor:
        """Spatial attention probabilities ``[B, T, heads, 1+N, 1+N]`` of this block for input
        ``x`` ``[B, 1 + N*T, D]`` (divided attention), or ``[B, heads, L, L]`` otherwise."""
        if self.attention_type != "divided_space_time":
            return self.attn.attention_map(self.norm1(x))
        b, _, d = x.shape
        t = num_frames
        cls, patches = x[:, :1], x[:, 1:]
        n = patches.shape[1] // t
        res_t = self.temporal_attn(self.temporal_norm1(patches.reshape(b * n, t, d)))
        xt = patches + self.temporal_fc(res_t.reshape(b, n * t, d))
        attn = self.attn.attention_map(self.norm1(per_frame(cls, xt, t)))
        return attn.reshape(b, t, *attn.shape[1:])


class PatchEmbed(nn.Module):
    """A ``patch x patch`` stride-``patch`` convolution applied to every frame.

    ``[B, C, T, H, W] -> ([B*T, h*w, D], T, h, w)``.
    """

    def __init__(self, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> tuple[Tensor, int, int, int]:
        b, c, t, height, width = x.shape
        p = self.patch_size
        if height % p or width % p:
            raise ValueError(f"input size {height}x{width} is not a multiple of the patch size {p}")
        x = self.proj(x.transpose(1, 2).reshape(b * t, c, height, width))
        h, w = x.shape[-2:]
        return x.flatten(2).transpose(1, 2), t, h, w


class VisionTransformer(nn.Module):
    """The Endo-FM backbone. Input clips ``[B, 3, T, H, W]`` with H, W multiples of the patch.

    Positional tables are learned for ``img_size``/``num_frames``; other grids and frame counts
    use tables resized by nearest interpolation (the release's dynamic positional encoding).
    """

    def __init__(self, img_size: int = 224, patch_size: int = 16, in_chans: int = 3,
                 embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0, drop_path_rate: float = 0.1, num_frames: int = 8,
                 attention_type: str = "divided_space_time",
                 grad_checkpointing: bool = False, use_mask_token: bool = False) -> None:
        super().__init__()
        if attention_type not in ATTENTION_TYPES:
            raise ValueError(f"attention_type must be one of {ATTENTION_TYPES}, "
                             f"got {attention_type!r}")
        if img_size % patch_size:
            raise ValueError(f"img_size {img_size} is not a multiple of patch_size {patch_size}")
        self.img_size, self.patch_size, self.num_frames = img_size, patch_size, num_frames
        self.embed_dim = self.num_features = embed_dim
        self.depth, self.num_heads = depth, num_heads
        self.attention_type = str(attention_type)  # a plain string (config.json, checkpoints)
        self.grad_checkpointing = grad_checkpointing
        grid = img_size // patch_size
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        # masked-patch pre-training only (iBOT): replaces the embedding of hidden patches
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if use_mask_token else None
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        if attention_type != "space_only":
            self.time_embed = nn.Parameter(torch.zeros(1, num_frames, embed_dim))
            self.time_drop = nn.Dropout(drop_rate)
        dpr = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # linear
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, drop_rate, attn_drop_rate, dpr[i],
                  attention_type) for i in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self._init_weights()

    def _init_weights(self) -> None:
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if self.attention_type == "divided_space_time":
            for blk in list(self.blocks)[1:]:
                nn.init.zeros_(blk.temporal_fc.weight)
                nn.init.zeros_(blk.temporal_fc.bias)

    def no_weight_decay(self) -> set[str]:
        """Parameter names timm-style recipes exempt from weight decay (besides biases and
        norms); the release's model declares them too but its training code never reads them."""
        return set(NO_DECAY_PARAMS)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in the backward pass (saves memory)."""
        self.grad_checkpointing = enable

    def set_explicit_attention(self, enable: bool = True) -> None:
        """Use explicit matmul+softmax attention (the released form) instead of SDPA."""
        for layer in attention_layers(self):
            layer.explicit = enable

    # -- embedding -------------------------------------------------------------------------
    def _spatial_pos(self, h: int, w: int) -> Tensor:
        """Spatial table ``[1, 1 + h*w, D]`` (CLS entry first), nearest-resized to ``h x w``."""
        grid = self.img_size // self.patch_size
        if (h, w) == (grid, grid):
            return self.pos_embed
        return resize_pos_embed(self.pos_embed, (h, w))

    def _temporal_pos(self, t: int) -> Tensor:
        """Temporal table ``[1, T, D]``, nearest-resized to ``t`` frames."""
        if t == self.time_embed.shape[1]:
            return self.time_embed
        return resize_time_embed(self.time_embed, t)

    def _apply_mask(self, x: Tensor, masks: Tensor, b: int, t: int) -> Tensor:
        """Replace the patch embeddings ``x`` ``[B*T, N, D]`` of the tokens set in ``masks``
        ``[B, N*T]`` (token order h, w, t) by the learned mask token."""
        if self.mask_token is None:
            raise ValueError("masks given but the model has no mask token "
                             "(build it with use_mask_token=True)")
        n = x.shape[1]
        if tuple(masks.shape) != (b, n * t):
            raise ValueError(f"masks of shape {tuple(masks.shape)} do not fit {b} clips of "
                             f"{n} patches x {t} frames")
        per_frame = masks.reshape(b, n, t).transpose(1, 2).reshape(b * t, n, 1)
        return torch.where(per_frame, self.mask_token.to(x.dtype), x)

    def embed(self, x: Tensor, masks: Tensor | None = None) -> tuple[Tensor, int, int, int]:
        """Patch-embed ``[B, 3, T, H, W]`` and add CLS and positional/temporal tables.

        ``masks`` (bool ``[B, N*T]``, token order) replaces the set patches by the mask token
        before the positional tables are added. Returns ``(tokens, T, h, w)`` with tokens
        ``[B, 1 + N*T, D]`` in (h, w, t) order (``[B*T, 1 + N, D]`` for ``space_only``).
        """
        b = x.shape[0]
        x, t, h, w = self.patch_embed(x)  # [B*T, N, D]
        if masks is not None:
            x = self._apply_mask(x, masks, b, t)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.pos_drop(x + self._spatial_pos(h, w))
        if self.attention_type == "space_only":
            return x, t, h, w
        cls = x[:b, :1]
        n, d = h * w, x.shape[-1]
        patches = x[:, 1:].reshape(b, t, n, d).transpose(1, 2).reshape(b * n, t, d)
        patches = self.time_drop(patches + self._temporal_pos(t)).reshape(b, n * t, d)
        return torch.cat([cls, patches], dim=1), t, h, w

    # -- trunk -----------------------------------------------------------------------------
    def _run_block(self, blk: Block, x: Tensor, t: int) -> Tensor:
        if self.grad_checkpointing and torch.is_grad_enabled():
            return checkpoint(blk, x, t, use_reentrant=False)
        return blk(x, t)

    def _frame_mean(self, x: Tensor, b: int) -> Tensor:
        """``space_only``: average per-frame tokens ``[B*T, 1+N, D] -> [B, 1+N, D]``."""
        if self.attention_type != "space_only":
            return x
        return x.reshape(b, -1, *x.shape[1:]).mean(dim=1)

    def forward_features(self, x: Tensor, masks: Tensor | None = None) -> Tensor:
        """All tokens after the final norm: ``[B, 3, T, H, W] -> [B, 1 + N*T, D]``.

        For ``space_only`` the frames are averaged: ``[B, 1 + N, D]``. ``masks`` (bool
        ``[B, N*T]``) hides patches behind the mask token (see :meth:`embed`).
        """
        b = x.shape[0]
        x, t, _, _ = self.embed(x, masks)
        for blk in self.blocks:
            x = self._run_block(blk, x, t)
        return self.norm(self._frame_mean(x, b))

    def forward(self, x: Tensor) -> Tensor:
        """The clip embedding: the normalised CLS token, ``[B, 3, T, H, W] -> [B, D]``."""
        return self.forward_features(x)[:, 0]

    def get_intermediate_layers(self, x: Tensor, n: int | Sequence[int] = 1, norm: bool = True,
                                reshape: bool = False) -> tuple[Tensor, ...]:
        """Outputs of the last ``n`` blocks (or of the blocks at the given indices).

        Each is ``[B, 1 + N*T, D]``; with ``reshape=True`` the patch tokens as a feature volume
        ``[B, D, T, h, w]`` (CLS dropped). ``norm`` applies the final LayerNorm.
        """
        if reshape:
            require_per_frame_tokens(self, "get_intermediate_layers(reshape=True)")
        wanted = set(range(self.depth - n, self.depth)) if isinstance(n, int) else set(n)
        if not wanted or min(wanted) < 0 or max(wanted) >= self.depth:
            raise ValueError(f"block indices {sorted(wanted)} out of range for depth {self.depth}")
        b = x.shape[0]
        x, t, h, w = self.embed(x)
        outputs = []
        for i, blk in enumerate(self.blocks):
            x = self._run_block(blk, x, t)
            if i in wanted:
                out = self._frame_mean(x, b)
                outputs.append(self.norm(out) if norm else out)
        if reshape:
            d = self.embed_dim
            outputs = [o[:, 1:].reshape(b, h, w, t, d).permute(0, 4, 3, 1, 2) for o in outputs]
        return tuple(outputs)

    @torch.no_grad()
    def get_last_selfattention(self, x: Tensor) -> Tensor:
        """Spatial attention of the last block, ``[B, T, heads, 1+N, 1+N]`` (query/key index 0
        is the CLS token; keys 1.. are the frame's patches in (h, w) order).

        ``joint_space_time`` gives ``[B, 1, heads, 1+N*T, 1+N*T]`` (one map over all tokens).
        """
        b = x.shape[0]
        x, t, _, _ = self.embed(x)
        for blk in list(self.blocks)[:-1]:
            x = blk(x, t)
        attn = self.blocks[-1].spatial_attention_map(x, t)
        if self.attention_type == "space_only":
            attn = attn.reshape(b, t, *attn.shape[1:])
        elif self.attention_type == "joint_space_time":
            attn = attn.unsqueeze(1)
        return attn
