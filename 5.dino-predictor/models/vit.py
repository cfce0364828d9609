"""A small Vision Transformer, with self-attention written out: the encoder DINO trains, and the blocks
the predictor is built from.

Shape key used in this chapter's comments:
    B batch, T time (frames), N patch tokens per frame (16 = a 4x4 grid of 16x16-pixel patches),
    L tokens in one attention sequence, E transformer width, D feature dim, H heads.

A 64x64 frame is cut into 16x16-pixel patches; each becomes a token (a linear map of its 768 pixel values
plus a learned position); a class token [CLS] joins them; pre-norm blocks of attention and MLP mix them.
The encoder's *patch* tokens after the last block are the features the world model predicts.
Why 16-pixel patches, 16 tokens? DINOv2 at 224 px has 256; on a 2-core CPU the predictor and the
planner (thousands of imagined futures per step) must stay cheap. The price, measured in NOTES.md:
finer patches would give a sharper cost near the goal.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def check_frames(x: torch.Tensor, size: int | None = 64) -> None:
    """Raise a ValueError naming the expected input unless ``x`` is float frames (B, 3, size, size)."""
    if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x):
        kind = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected a float tensor of shape (B, 3, 64, 64) in [0, 1], got {kind}")
    if x.dim() != 4 or x.shape[1] != 3 or (size is not None and tuple(x.shape[2:]) != (size, size)):
        raise ValueError(
            f"expected frames of shape (B, 3, {size or 'S'}, {size or 'S'}), got {tuple(x.shape)}"
        )


class Attention(nn.Module):
    """Multi-head self-attention: softmax(Q K^T / sqrt(d) + mask) V, written out.

    ``mask`` (L, L) bool: True where token i may attend to token j (None: everyone sees everyone).
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} must be divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, L, E) -> (B, L, E)."""
        b, n, e = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, e // self.heads).permute(2, 0, 3, 1, 4)
        # q, k, v: (B, H, L, E/H)
        scores = q @ k.transpose(-2, -1) / math.sqrt(e // self.heads)  # (B, H, L, L)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))  # forbidden pairs get weight 0 after softmax
        return self.out((scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, e))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 2):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, L, E) -> (B, L, E)."""
        x = x + self.attn(self.norm1(x), mask)
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """Images (B, 3, S, S) -> tokens (B, 1 + (S/patch)^2, E): [CLS] first, then the patches row by row.

    Built for 64x64 frames (a 4x4 grid); smaller crops (DINO's local views, 32x32 -> 2x2 patches) get
    the position embeddings resized by bilinear interpolation, as DINO does.
    """

    def __init__(self, img: int = 64, patch: int = 16, dim: int = 64, depth: int = 4, heads: int = 4):
        super().__init__()
        self.patch, self.grid, self.dim = patch, img // patch, dim
        self.embed = nn.Conv2d(3, dim, patch, stride=patch)  # one linear map per patch
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, dim, self.grid, self.grid) * 0.02)  # a grid of positions
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.mask_token = nn.Parameter(torch.zeros(1, dim, 1, 1))  # iBOT: stands in for a hidden patch

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, 3, S, S) in [0, 1], S a multiple of the patch size -> (B, 1 + N, E).

        ``mask`` (B, N) bool, optional: patches replaced by the learned mask token (iBOT's student input).
        """
        check_frames(x, size=None)
        if x.shape[-1] % self.patch or x.shape[-1] != x.shape[-2]:
            raise ValueError(f"expected square images with a side divisible by {self.patch}, got {x.shape}")
        p = self.embed(x * 2 - 1)  # (B, E, g, g) with g = S / patch
        if mask is not None:
            p = torch.where(mask.view(len(x), 1, *p.shape[-2:]), self.mask_token, p)  # hidden patches
        pos = (
            self.pos
            if p.shape[-1] == self.grid
            else F.interpolate(self.pos, size=p.shape[-2:], mode="bilinear")
        )
        tok = (p + pos).flatten(2).transpose(1, 2)  # (B, N, E)
        tok = torch.cat([self.cls.expand(len(x), -1, -1), tok], dim=1)  # (B, 1 + N, E)
        for block in self.blocks:
            tok = block(tok)
        return self.norm(tok)

    def patch_features(self, x: torch.Tensor) -> torch.Tensor:
        """Frames (B, 3, 64, 64) -> patch features (B, N=16, D=E): what the world model predicts."""
        check_frames(x)
        return self(x)[:, 1:]
