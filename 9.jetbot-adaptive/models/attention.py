"""Attention written out by hand, an encoder layer that can hand back its attention map, and the fixed
2-D sin-cos position embedding.

Shape key (used in every model file of this chapter):
    B batch, L sequence length (tokens), E model width, Hd heads, N tokens per frame, D latent width,
    H history length (frames), A action components, K number of actions, C/Hp/Wp channels and size.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

MAX_TOKENS = 4096  # sequence length cap: attention memory grows with L^2


class MultiHeadSelfAttention(nn.Module):
    """softmax(Q K^T / sqrt(d) + mask) V over Hd heads, with an optional boolean mask (True = may look)."""

    def __init__(self, dim: int, heads: int):
        """dim: E, heads: Hd (E must be divisible by Hd)."""
        super().__init__()
        if dim % heads:
            raise ValueError(f"model width {dim} must be divisible by the number of heads {heads}")
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, return_attn: bool = False):
        """x: (B, L, E); mask: (L, L) bool or None. Returns y (B, L, E) and the weights (B, Hd, L, L)
        when ``return_attn`` (else None)."""
        b, length, e = x.shape
        qkv = self.qkv(x).view(b, length, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # each (B, Hd, L, E/Hd)
        scores = (q / math.sqrt(self.head_dim)) @ k.transpose(-2, -1)  # (B, Hd, L, L); scale the smaller q
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        attn = scores.softmax(dim=-1)  # each row sums to 1 over the tokens it may see
        y = (attn @ v).transpose(1, 2).reshape(b, length, e)  # (B, L, E)
        return self.proj(y), (attn if return_attn else None)


class EncoderLayer(nn.Module):
    """Pre-norm transformer layer: x + attn(norm(x)), then x + mlp(norm(x)); can return its attention."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0):
        """dim: E; heads: Hd; mlp_ratio: hidden width of the MLP relative to E."""
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = MultiHeadSelfAttention(dim, heads)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, return_attn: bool = False):
        """x: (B, L, E) -> (B, L, E), and the attention weights (B, Hd, L, L) or None."""
        if x.shape[1] > MAX_TOKENS:
            raise ValueError(f"sequence of {x.shape[1]} tokens is longer than the cap of {MAX_TOKENS}")
        y, attn = self.attn(self.norm1(x), mask, return_attn)
        x = x + y
        return x + self.mlp(self.norm2(x)), attn


def sincos_2d(grid: int, dim: int) -> torch.Tensor:
    """Fixed 2-D sin-cos position embedding (as in MAE): (grid*grid, dim), half the channels for the
    row, half for the column, each a bank of sines and cosines at geometric frequencies."""
    if dim % 4:
        raise ValueError(f"sin-cos embedding width must be divisible by 4, got {dim}")
    omega = 1.0 / 10000 ** (np.arange(dim // 4) / (dim // 4))  # (dim/4,)
    ys, xs = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    parts = []
    for coord in (ys.reshape(-1), xs.reshape(-1)):
        angles = np.outer(coord, omega)  # (N, dim/4)
        parts += [np.sin(angles), np.cos(angles)]
    return torch.tensor(np.concatenate(parts, axis=1), dtype=torch.float32)  # (N, dim)
