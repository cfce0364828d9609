"""A small causal transformer that predicts the next frame's latent from past latents.

Shape key: B batch, T time (frames), N tokens per frame (256 = 16x16 latent cells), P values per token
(4 FSQ channels), E embedding width, H heads.

Tokens. The FSQ codec of chapter 1 turns a frame into a (D=4, 16, 16) latent grid; every cell is one
token of P = 4 numbers, so a frame is N = 256 tokens and a clip of T frames is T x 256 tokens.

Why not let every token attend to every other token of every frame? That is (T*256)^2 attention
scores per layer, far too slow on a laptop CPU, and it is also the wrong inductive bias here: a ball
moves at most 2.5 px (less than one 4-px cell) per frame, so what happens in a cell next depends on
its neighbourhood, not on the far side of the frame. So each block is *factorised*, as in Genie's
spatio-temporal transformer:
- across time: causal self-attention, each cell attending to the same cell in the current and earlier
  frames (the mask, built by hand below, hides later frames);
- across space: a 3x3 convolution mixing each cell with its 8 neighbours in the same frame (a cheap
  stand-in for local spatial attention; four blocks see 4 cells = 16 px around). A full convolution,
  not a depthwise one: moving a ball by a fraction of a cell means combining *different* features
  of the left and the right neighbour, and a depthwise filter (one 3x3 per feature) cannot tell
  them apart (measured: 4.4 against 6.3 px at horizon 5 after 400 steps);
- a per-token MLP.
The output at frame t predicts frame t+1, so one forward pass trains T predictions at once, each with
its own context length: frame 0's prediction has seen one frame, frame 2's three.

Two heads read the same transformer:
- regression: predict the next latent values directly (MSE), added to the current ones (a delta),
  because most of a frame does not change;
- classification: the FSQ latent is a digit per channel (8, 5, 5, 5 levels), so predict a distribution
  over each channel's levels (cross-entropy). Where the future is uncertain, regression averages the
  possibilities into a blur; classification keeps them apart and the decoder receives a valid code.
"""

from __future__ import annotations

import math

import torch
from torch import nn

GRID, FSQ_DIM = 16, 4  # latent grid side, channels per cell
N_TOKENS = GRID * GRID  # 256 tokens per frame, one per latent cell
TOKEN_DIM = FSQ_DIM  # 4 values per token


def latents_to_tokens(z: torch.Tensor) -> torch.Tensor:
    """(B, T, D, 16, 16) latent grids -> (B, T, N=256, P=D) tokens, one per cell, row by row."""
    return z.flatten(3).transpose(2, 3)


def tokens_to_latents(tok: torch.Tensor) -> torch.Tensor:
    """(B, T, N, P) tokens -> (B, T, D, 16, 16) latent grids; the inverse of latents_to_tokens."""
    b, t = tok.shape[:2]
    return tok.transpose(2, 3).reshape(b, t, FSQ_DIM, GRID, GRID)


def snap_to_grid(tok: torch.Tensor, levels) -> torch.Tensor:
    """Round continuous latent tokens (..., P) to the nearest FSQ code, channel by channel.

    The decoder was trained on codes only, so a regression prediction is snapped before it is decoded.
    (Copied to chapter 3, which snaps before feeding back too.)
    """
    half = torch.tensor([lv // 2 for lv in levels], dtype=tok.dtype, device=tok.device)  # (P,)
    top = torch.tensor([lv - 1 - lv // 2 for lv in levels], dtype=tok.dtype, device=tok.device)
    return torch.minimum(torch.maximum(torch.round(tok * half), -half), top) / half


def causal_mask(t: int) -> torch.Tensor:
    """(T, T) bool mask: True where frame i may attend to frame j, i.e. j <= i (no peeking ahead)."""
    frame = torch.arange(t)
    return frame[None, :] <= frame[:, None]


class TemporalAttention(nn.Module):
    """Multi-head causal self-attention across time, written out: softmax(Q K^T / sqrt(d) + mask) V.

    Every token (cell) attends to the same cell in its own and earlier frames only.
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, N, E) -> (B, T, N, E)."""
        b, t, n, e = x.shape
        hd = e // self.heads
        q, k, v = self.qkv(x).view(b, t, n, 3, self.heads, hd).unbind(3)
        # q, k, v: (B, T, N, H, E/H) - one short sequence of T frames per cell and head.
        # The dot products written as broadcast-multiply-and-sum: with T = 3, a batched matmul of
        # thousands of tiny 3x16 matrices is slower on a CPU (chapter 3 measured 1.4x for this layer)
        scores = (q[:, :, None] * k[:, None]).sum(-1) / math.sqrt(hd)  # (B, T, T, N, H)
        mask = causal_mask(t).to(x.device)[None, :, :, None, None]  # (1, T, T, 1, 1)
        weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=2)  # later frames: weight 0
        return self.out((weights[..., None] * v[:, None]).sum(2).reshape(b, t, n, e))  # (B, T, N, E)


class Block(nn.Module):
    """Pre-norm factorised block: x + conv3x3(norm(x)) across space, x + attn(norm(x)) across time,
    then x + mlp(norm(x)) per token."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.space = nn.Conv2d(dim, dim, 3, padding=1)  # (E, E, 3, 3): every feature of every neighbour
        self.time = TemporalAttention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, N, E) -> (B, T, N, E)."""
        b, t, n, e = x.shape
        grid = self.norm1(x).reshape(b * t, GRID, GRID, e).permute(0, 3, 1, 2)  # (B*T, E, 16, 16)
        x = x + self.space(grid).permute(0, 2, 3, 1).reshape(b, t, n, e)
        x = x + self.time(self.norm2(x))
        return x + self.mlp(self.norm3(x))


class LatentDynamics(nn.Module):
    """Causal space-time transformer over latent tokens with a regression or a classification head.

    Args:
        head: "regression" or "classification".
        levels: FSQ levels per channel (sizes the classification head and decodes its digits).
        dim, depth, heads: transformer width, number of blocks, attention heads.
        max_frames: the longest context the model reads (its temporal position embedding's length).
    """

    def __init__(self, head="regression", levels=(8, 5, 5, 5), dim=64, depth=4, heads=4, max_frames=3):
        super().__init__()
        if head not in ("regression", "classification"):
            raise ValueError(f"head must be 'regression' or 'classification', got {head!r}")
        self.head_kind, self.levels, self.max_frames = head, tuple(levels), max_frames
        self.embed = nn.Linear(TOKEN_DIM, dim)
        self.pos_space = nn.Parameter(torch.randn(N_TOKENS, dim) * 0.02)  # which cell (walls are fixed)
        self.pos_time = nn.Parameter(torch.randn(max_frames, dim) * 0.02)  # which frame of the context
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, TOKEN_DIM if head == "regression" else sum(self.levels))

    def forward(self, tok: torch.Tensor) -> torch.Tensor:
        """Read a clip and predict each next frame.

        Args:
            tok: (B, T, N, P) tokens of frames 0..T-1, T <= max_frames.
        Returns:
            regression: (B, T, N, P) predicted tokens of frames 1..T;
            classification: (B, T, N, sum(levels)) logits for frames 1..T.
        """
        b, t, n, p = tok.shape
        if t > self.max_frames or (n, p) != (N_TOKENS, TOKEN_DIM):
            raise ValueError(
                f"expected tokens (B, T<={self.max_frames}, {N_TOKENS}, {TOKEN_DIM}), got {tuple(tok.shape)}"
            )
        x = self.embed(tok) + self.pos_space + self.pos_time[:t, None]  # (B, T, N, E)
        for block in self.blocks:
            x = block(x)
        y = self.head(self.norm(x))  # (B, T, N, P) or (B, T, N, sum(levels))
        return tok + y if self.head_kind == "regression" else y  # regression predicts the change

    def logits_to_tokens(self, logits: torch.Tensor) -> torch.Tensor:
        """Classification logits (B, T, N, sum(levels)) -> tokens (B, T, N, P) of the argmax digits."""
        parts, start = [], 0
        for lv in self.levels:  # one softmax per FSQ channel
            digit = logits[..., start : start + lv].argmax(-1)  # (B, T, N) in [0, lv)
            parts.append((digit - lv // 2).float() / (lv // 2))  # back to FSQ's values in [-1, 1]
            start += lv
        return torch.stack(parts, dim=-1)  # (B, T, N, D)

    def predict_next(self, tok: torch.Tensor) -> torch.Tensor:
        """Tokens of a context (B, T, N, P) -> tokens of the next frame (B, N, P); reads the last
        max_frames frames."""
        out = self(tok[:, -self.max_frames :])[:, -1:]
        return (out if self.head_kind == "regression" else self.logits_to_tokens(out))[:, 0]


def tokens_to_digits(tok: torch.Tensor, levels) -> torch.Tensor:
    """FSQ tokens (B, T, N, P) -> integer digit per cell and channel (B, T, N, D): the class targets."""
    half = torch.tensor([lv // 2 for lv in levels], device=tok.device)
    return torch.round(tok * half + half).long()


def classification_loss(logits: torch.Tensor, digits: torch.Tensor, levels) -> torch.Tensor:
    """Cross-entropy summed over FSQ channels: logits (..., sum(levels)), digits (..., D)."""
    loss, start = 0.0, 0
    for d, lv in enumerate(levels):
        logp = logits[..., start : start + lv].log_softmax(-1)  # (..., lv)
        loss = loss - logp.gather(-1, digits[..., d : d + 1]).mean()
        start += lv
    return loss
