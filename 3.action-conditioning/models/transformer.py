"""Chapter 2's block-causal latent transformer, told what the agent did: three ways to inject the action.

Adapted from chapter 2 (2.latent-dynamics/models/transformer.py): tokens, mask and attention are the
same; the regression head predicts the change of each token; new is the action.

Shape key: B batch, T time (frames), N tokens per frame (16), P values per token (64 = 4x4 latent cells
x D=4 FSQ channels), L sequence length, E embedding width, H heads.

Action a_t is what the agent does *at* frame t; it decides frame t+1. The output at frame t predicts
frame t+1, so frame t's tokens must see a_t (and, by the block-causal mask, nothing from t+1 on).
Three ways to tell them (``method``):

    concat  [token values | action embedding] -> linear -> E  (every token of frame t carries a_t)
    token   frame t's block = its 16 tokens + 1 action token; attention carries a_t to the others
    film    every block: norm(x) * (1 + gamma(a_t)) + beta(a_t) (feature-wise linear modulation)
    none    the action is ignored: the control that shows why the action must go in at all
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .actions import ActionEncoder

GRID, CELL, FSQ_DIM = 16, 4, 4  # latent grid side, cells per token side, channels per cell
N_TOKENS = (GRID // CELL) ** 2  # 16 tokens per frame
TOKEN_DIM = CELL * CELL * FSQ_DIM  # 64 values per token
METHODS = ("concat", "token", "film", "none")


def latents_to_tokens(z: torch.Tensor) -> torch.Tensor:
    """(B, T, D, 16, 16) latent grids -> (B, T, N, P) tokens of 4x4 cells."""
    b, t, d, _, _ = z.shape
    g = GRID // CELL
    z = z.reshape(b, t, d, g, CELL, g, CELL)  # (B, T, D, gy, cy, gx, cx)
    return z.permute(0, 1, 3, 5, 4, 6, 2).reshape(b, t, g * g, CELL * CELL * d)


def tokens_to_latents(tok: torch.Tensor) -> torch.Tensor:
    """(B, T, N, P) tokens -> (B, T, D, 16, 16) latent grids; the inverse of latents_to_tokens."""
    b, t, _, _ = tok.shape
    g = GRID // CELL
    z = tok.reshape(b, t, g, g, CELL, CELL, FSQ_DIM)  # (B, T, gy, gx, cy, cx, D)
    return z.permute(0, 1, 6, 2, 4, 3, 5).reshape(b, t, FSQ_DIM, GRID, GRID)


def snap_to_grid(tok: torch.Tensor, levels) -> torch.Tensor:
    """Round regression outputs (..., P) to the nearest valid FSQ code, channel by channel.

    The codec only ever produced values on the FSQ grid; a rollout that feeds back slightly-off values
    drifts into inputs the model never saw. Snapping removes errors smaller than half a level each step.
    """
    half = torch.tensor([lv // 2 for lv in levels], dtype=tok.dtype, device=tok.device)  # (D,)
    top = torch.tensor([lv - 1 - lv // 2 for lv in levels], dtype=tok.dtype, device=tok.device)
    vals = tok.reshape(*tok.shape[:-1], -1, len(levels))  # (..., 16 cells, D)
    digits = torch.minimum(torch.maximum(torch.round(vals * half), -half), top)
    return (digits / half).reshape(tok.shape)


def block_causal_mask(t: int, n: int) -> torch.Tensor:
    """(T*n, T*n) bool mask: True where query token i may attend to key token j (frame(j) <= frame(i))."""
    frame = torch.arange(t * n) // n  # (T*n,) the frame each token belongs to
    return frame[None, :] <= frame[:, None]


class SelfAttention(nn.Module):
    """Multi-head self-attention written out: softmax(Q K^T / sqrt(d) + mask) V."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x: (B, L, E), mask: (L, L) bool (True = may attend) -> (B, L, E)."""
        b, length, e = x.shape
        q, k, v = self.qkv(x).view(b, length, 3, self.heads, e // self.heads).permute(2, 0, 3, 1, 4)
        # q, k, v: (B, H, L, E/H)
        scores = q @ k.transpose(-2, -1) / math.sqrt(e // self.heads)  # (B, H, L, L)
        scores = scores.masked_fill(~mask, float("-inf"))  # the future gets zero weight after softmax
        return self.out((scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, length, e))


class Block(nn.Module):
    """Pre-norm transformer block; with ``film`` the action rescales and shifts both normalised inputs."""

    def __init__(self, dim: int, heads: int, film: bool = False):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.film = nn.Linear(dim, 4 * dim) if film else None
        if film:  # start as the identity modulation (gamma = beta = 0), so training begins like chapter 2
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, act: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, L, E); act: (B, L, E) the action embedding of each token's frame (FiLM only)."""
        g1 = b1 = g2 = b2 = 0.0  # no modulation without FiLM
        if self.film is not None:
            g1, b1, g2, b2 = self.film(act).chunk(4, dim=-1)  # each (B, L, E)
        x = x + self.attn(self.norm1(x) * (1 + g1) + b1, mask)
        return x + self.mlp(self.norm2(x) * (1 + g2) + b2)


class ActionDynamics(nn.Module):
    """Block-causal transformer over latent tokens that predicts frame t+1 from frames <= t and a_t.

    Args:
        method: "concat", "token", "film" or "none" (ignores the action).
        action_kind: "discrete" (n_actions choices) or "continuous" (action_dim numbers in [-1, 1]).
        dim, depth, heads: transformer width, number of blocks, attention heads.
        max_frames: the longest clip it reads (its context window).
    """

    def __init__(
        self, method="film", action_kind="discrete", n_actions=5, action_dim=2, dim=128, depth=4, heads=4,
        max_frames=4, head="classification", levels=(8, 5, 5, 5),
    ):  # fmt: skip
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if head not in ("regression", "classification"):
            raise ValueError(f"head must be 'regression' or 'classification', got {head!r}")
        self.method, self.max_frames, self.head_kind, self.levels = method, max_frames, head, tuple(levels)
        self.actions = ActionEncoder(action_kind, dim, n_actions, action_dim)
        self.embed = nn.Linear(TOKEN_DIM + (dim if method == "concat" else 0), dim)
        n_pos = N_TOKENS + (1 if method == "token" else 0)  # the action token gets its own position
        self.pos_space = nn.Parameter(torch.randn(n_pos, dim) * 0.02)  # which patch of the frame
        self.pos_time = nn.Parameter(torch.randn(max_frames, dim) * 0.02)  # which frame of the clip
        self.blocks = nn.ModuleList(Block(dim, heads, film=method == "film") for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, TOKEN_DIM if head == "regression" else CELL * CELL * sum(self.levels))

    def forward(self, tok: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Read a clip and the actions taken in it; predict every next frame.

        Args:
            tok: (B, T, N, P) tokens of frames 0..T-1, T <= max_frames.
            actions: (B, T) int64 (discrete) or (B, T, A) float (continuous): a_t taken at frame t.
        Returns:
            regression: (B, T, N, P) predicted tokens of frames 1..T;
            classification: (B, T, N, 16 cells, sum(levels)) logits of each cell's FSQ digits.
        """
        b, t, n, p = tok.shape
        if tok.dim() != 4 or t > self.max_frames or (n, p) != (N_TOKENS, TOKEN_DIM):
            raise ValueError(
                f"expected tokens (B, T<={self.max_frames}, {N_TOKENS}, {TOKEN_DIM}), got {tuple(tok.shape)}"
            )
        self.actions.check(actions, b, t)
        a = self.actions(actions)  # (B, T, E)
        if self.method == "none":
            a = torch.zeros_like(a)  # same computation, no information: the action-blind control
        if self.method == "concat":  # every token of frame t gets a_t glued to its values
            x = self.embed(torch.cat([tok, a[:, :, None].expand(-1, -1, n, -1)], dim=-1))  # (B, T, N, E)
        else:
            x = self.embed(tok)  # (B, T, N, E)
        if self.method == "token":  # one more token per frame, holding the action
            x = torch.cat([x, a[:, :, None]], dim=2)  # (B, T, N+1, E)
        per_frame = x.shape[2]
        x = (x + self.pos_space + self.pos_time[:t, None]).reshape(b, t * per_frame, -1)  # (B, L, E)
        film = a[:, :, None].expand(-1, -1, per_frame, -1).reshape(b, t * per_frame, -1)  # (B, L, E)
        mask = block_causal_mask(t, per_frame).to(tok.device)
        for block in self.blocks:
            x = block(x, mask, film)
        y = self.head(self.norm(x)).reshape(b, t, per_frame, -1)[:, :, :n]  # drop the action token
        if self.head_kind == "regression":
            return tok + y  # predict the change: most of the frame does not move
        return y.reshape(b, t, n, CELL * CELL, sum(self.levels))

    def to_tokens(self, out: torch.Tensor, snap: bool = True) -> torch.Tensor:
        """The model's output -> tokens (..., N, P): argmax digits (classification), or the regression
        values snapped to the FSQ grid (``snap``) or left as they are."""
        if self.head_kind == "regression":
            return snap_to_grid(out, self.levels) if snap else out
        parts, start = [], 0
        for lv in self.levels:  # one softmax per FSQ channel
            digit = out[..., start : start + lv].argmax(-1)  # (..., 16) in [0, lv)
            parts.append((digit - lv // 2).float() / (lv // 2))  # back to FSQ's values in [-1, 1]
            start += lv
        return torch.stack(parts, dim=-1).flatten(-2)  # (..., 16 * D) cell-major, channel-minor


def tokens_to_digits(tok: torch.Tensor, levels) -> torch.Tensor:
    """FSQ tokens (..., P) -> the integer digit of each cell and channel (..., 16, D): class targets."""
    vals = tok.reshape(*tok.shape[:-1], CELL * CELL, len(levels))
    half = torch.tensor([lv // 2 for lv in levels], device=tok.device)
    return torch.round(vals * half + half).long()


def classification_loss(logits: torch.Tensor, digits: torch.Tensor, levels) -> torch.Tensor:
    """Cross-entropy summed over FSQ channels: logits (..., sum(levels)), digits (..., D). From chapter 2."""
    loss, start = 0.0, 0
    for d, lv in enumerate(levels):
        logp = logits[..., start : start + lv].log_softmax(-1)  # (..., lv)
        loss = loss - logp.gather(-1, digits[..., d : d + 1]).mean()
        start += lv
    return loss
