"""The transformer pieces every model of this chapter is made of, with attention written out.

Shape key: B batch, N tokens, D feature dim, h heads, d = D / h per-head dim.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn


class Attention(nn.Module):
    """Multi-head self-attention: softmax(q k^T / sqrt(d) + mask) v, by hand.

    Args:
        dim: D. heads: h (D must be divisible by h).
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, N, D); allowed: (N, N) bool, True where query i may look at key j. Returns (B, N, D)."""
        b, n, dim = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)  # (B,h,N,d)
        scores = q @ k.transpose(-2, -1) / math.sqrt(dim // self.heads)  # (B, h, N, N)
        if allowed is not None:
            scores = scores.masked_fill(~allowed, float("-inf"))
        out = scores.softmax(dim=-1) @ v  # (B, h, N, d)
        return self.proj(out.transpose(1, 2).reshape(b, n, dim))


class Block(nn.Module):
    """A pre-norm transformer block: x + attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, allowed: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, N, D) -> (B, N, D)."""
        x = x + self.attn(self.norm1(x), allowed)
        return x + self.mlp(self.norm2(x))


class Transformer(nn.Module):
    """``depth`` blocks and a final LayerNorm."""

    def __init__(self, dim: int, depth: int, heads: int, mlp_ratio: float = 2.0):
        super().__init__()
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, N, D) -> (B, N, D)."""
        for block in self.blocks:
            x = block(x, allowed)
        return self.norm(x)


def sincos_1d(pos: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of positions (N,) -> (N, dim): sin and cos at dim/2 geometric frequencies."""
    freq = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float32) / (dim // 2))  # (dim/2,)
    angle = pos.float()[:, None] * freq[None, :]  # (N, dim/2)
    return torch.cat([angle.sin(), angle.cos()], dim=1)


def sincos_3d(t: int, h: int, w: int, dim: int) -> torch.Tensor:
    """Fixed 3-D sin-cos positions for a (t, h, w) grid of tokens, time-major order -> (t*h*w, dim).

    The feature dim is split in three parts (time, row, column); each part encodes one coordinate.
    dim must be divisible by 6.
    """
    if dim % 6:
        raise ValueError(f"the feature dim must be divisible by 6 for 3-D sin-cos positions, got {dim}")
    gt, gh, gw = torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij")
    part = dim // 3
    return torch.cat([sincos_1d(g.flatten(), part) for g in (gt, gh, gw)], dim=1)
