"""The transformer pieces shared by the tiny ViT and the small language model, written out by hand:
RMSNorm, rotary position embeddings (RoPE), multi-head self-attention (optionally causal), the MLP and
the pre-norm block.

Gemma 3 uses the same ingredients (RMSNorm, RoPE, pre-norm blocks), so what we learn on the small model
carries over when `--lm gemma3-270m` swaps it for the real one.

Shape key: B batch, L sequence length, D model width, H heads, E = D / H head width.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    """x / rms(x) * gain: LayerNorm without the mean, as in Gemma and LLaMA."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.gain, self.eps = nn.Parameter(torch.ones(dim)), eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., D) -> (..., D)."""
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.gain


def rope(x: torch.Tensor, positions: torch.Tensor | None = None, base: float = 10_000.0) -> torch.Tensor:
    """Rotary position embedding: rotate each pair of channels by an angle proportional to the position.

    Because q and k are rotated by their own positions, q.k depends only on their *distance*: tokens
    inserted before the image (the world tokens) do not change how the text sees the image.
    x: (B, H, L, E), positions: (L,) or (B, L) (default 0, 1, ..., L-1) -> (B, H, L, E).
    """
    L, E = x.shape[-2], x.shape[-1]
    if positions is None:
        positions = torch.arange(L, device=x.device)
    freq = base ** (-torch.arange(0, E, 2, device=x.device, dtype=torch.float32) / E)  # (E/2,)
    angle = positions.float()[..., :, None] * freq  # (L, E/2) or (B, L, E/2)
    if angle.ndim == 3:
        angle = angle[:, None]  # (B, 1, L, E/2): the same for every head
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]  # (B, H, L, E/2) each
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


class Attention(nn.Module):
    """Multi-head self-attention: softmax(q k^T / sqrt(E) + mask) v, heads concatenated, projected.

    Args:
        dim: D. heads: H. causal: each token sees only itself and earlier tokens (the language model).
        use_rope: rotate q and k by position (the language model); the ViT adds learned positions instead.
    """

    def __init__(self, dim: int, heads: int, causal: bool, use_rope: bool):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} must be divisible by heads {heads}")
        self.heads, self.causal, self.use_rope = heads, causal, use_rope
        self.qkv, self.out = nn.Linear(dim, 3 * dim, bias=False), nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, L, D), positions: (L,) or (B, L) for RoPE (default 0..L-1) -> (B, L, D)."""
        B, L, D = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)  # (B,H,L,E)
        if self.use_rope:
            q, k = rope(q, positions), rope(k, positions)
        scores = q @ k.transpose(-2, -1) / math.sqrt(D // self.heads)  # (B, H, L, L)
        if self.causal:
            future = torch.ones(L, L, dtype=torch.bool, device=x.device).triu(1)  # True above the diagonal
            scores = scores.masked_fill(future, float("-inf"))
        weights = scores.softmax(-1)  # (B, H, L, L): row i says how much token i reads each token j
        return self.out((weights @ v).transpose(1, 2).reshape(B, L, D))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, heads: int, causal: bool, use_rope: bool, mlp_ratio: int = 4):
        super().__init__()
        self.norm1, self.norm2 = RMSNorm(dim), RMSNorm(dim)
        self.attn = Attention(dim, heads, causal, use_rope)
        self.fc1, self.fc2 = nn.Linear(dim, mlp_ratio * dim), nn.Linear(mlp_ratio * dim, dim)

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, L, D) -> (B, L, D); positions as in Attention."""
        x = x + self.attn(self.norm1(x), positions)
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))
