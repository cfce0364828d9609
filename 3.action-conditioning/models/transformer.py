"""Chapter 2's local factorised latent transformer, told what the agent did: three ways to inject the action.

Adapted from chapter 2 (2.latent-dynamics/models/transformer.py): one token per latent cell, and each
block mixes space with a 3x3 convolution and time with causal attention per cell; the classification
head predicts each cell's FSQ digits. New is the action. One difference: the 3x3 here is depthwise
(one filter per feature); chapter 2's full 3x3 kept its balls closer at ~1.5x the cost per step, while
the depthwise one meets this chapter's targets.

Shape key: B batch, T time (frames), N tokens per frame (256 = 16x16 latent cells), P values per token
(4 FSQ channels), E embedding width, H heads.

Why local? An object moves less than one 4-px latent cell per step, so what a cell holds next depends on
its neighbourhood, not on the far side of the frame. Chapter 2 measured it: a global attention over
coarse 4x4-cell patches learned little beyond copy-last, this local design fixed one-step prediction.

Action a_t is what the agent does *at* frame t; it decides frame t+1. The output at frame t predicts
frame t+1, so frame t's tokens must see a_t (and nothing from t+1 on). Three ways to tell them
(``method``):

    concat  [cell values | action embedding] -> linear -> E  (every cell of frame t carries a_t)
    token   one action token per frame joins every cell's temporal attention: each cell's sequence
            reads f_0, a_0, f_1, a_1, ... and f_t may attend to f_j and a_j for j <= t
    film    every block: norm(x) * (1 + gamma(a_t)) + beta(a_t) (feature-wise linear modulation)
    none    the action is ignored: the control that shows why the action must go in at all
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .actions import ActionEncoder

GRID, FSQ_DIM = 16, 4  # latent grid side, channels per cell
N_TOKENS = GRID * GRID  # 256 tokens per frame, one per latent cell
TOKEN_DIM = FSQ_DIM  # 4 values per token
METHODS = ("concat", "token", "film", "none")


def latents_to_tokens(z: torch.Tensor) -> torch.Tensor:
    """(B, T, D, 16, 16) latent grids -> (B, T, N=256, P=D) tokens, one per cell, row by row."""
    return z.flatten(3).transpose(2, 3)


def tokens_to_latents(tok: torch.Tensor) -> torch.Tensor:
    """(B, T, N, P) tokens -> (B, T, D, 16, 16) latent grids; the inverse of latents_to_tokens."""
    b, t = tok.shape[:2]
    return tok.transpose(2, 3).reshape(b, t, FSQ_DIM, GRID, GRID)


def snap_to_grid(tok: torch.Tensor, levels) -> torch.Tensor:
    """Round regression outputs (..., P) to the nearest valid FSQ code, channel by channel.

    The codec only ever produced values on the FSQ grid; a rollout that feeds back slightly-off values
    drifts into inputs the model never saw. Snapping removes errors smaller than half a level each step.
    """
    half = torch.tensor([lv // 2 for lv in levels], dtype=tok.dtype, device=tok.device)  # (D,)
    top = torch.tensor([lv - 1 - lv // 2 for lv in levels], dtype=tok.dtype, device=tok.device)
    return torch.minimum(torch.maximum(torch.round(tok * half), -half), top) / half


def causal_mask(t: int) -> torch.Tensor:
    """(T, T) bool mask: True where frame i may attend to frame j, i.e. j <= i (no peeking ahead)."""
    frame = torch.arange(t)
    return frame[None, :] <= frame[:, None]


class TemporalAttention(nn.Module):
    """Multi-head causal self-attention across time, written out: softmax(Q K^T / sqrt(d) + mask) V.

    Every token (cell) attends to the same cell in its own and earlier frames only. With ``act`` (the
    token method) each cell's keys and values are its frames *and* the action tokens a_0..a_{T-1}
    (one per frame, shared by all cells): frame t may read a_j for j <= t, so a_t reaches the
    prediction of frame t+1 and no later action leaks in.
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, act: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, T, N, E), act: (B, T, 1, E) action tokens or None -> (B, T, N, E)."""
        b, t, n, e = x.shape
        hd = e // self.heads
        q, k, v = self.qkv(x).view(b, t, n, 3, self.heads, hd).unbind(3)
        # q, k, v: (B, T, N, H, E/H) - one short sequence of T frames per cell and head
        mask = causal_mask(t).to(x.device)  # (T, T)
        if act is not None:  # append T action keys/values to every cell's sequence
            _, ka, va = self.qkv(act).view(b, t, 1, 3, self.heads, hd).unbind(3)  # each (B, T, 1, H, E/H)
            k = torch.cat([k, ka.expand(-1, -1, n, -1, -1)], dim=1)  # (B, 2T, N, H, E/H)
            v = torch.cat([v, va.expand(-1, -1, n, -1, -1)], dim=1)
            mask = torch.cat([mask, mask], dim=1)  # (T, 2T): frame i sees frames and actions j <= i
        # The dot products written as broadcast-multiply-and-sum: with T = 3, a batched matmul of 16,384
        # tiny 3x16 matrices per step was slower on a CPU (1.4x for this layer, measured)
        scores = (q[:, :, None] * k[:, None]).sum(-1) / math.sqrt(hd)  # (B, T, T or 2T, N, H)
        scores = scores.masked_fill(~mask[None, :, :, None, None], float("-inf"))  # later steps get weight 0
        weights = scores.softmax(dim=2)  # over the keys
        return self.out((weights[..., None] * v[:, None]).sum(2).reshape(b, t, n, e))  # (B, T, N, E)


class Block(nn.Module):
    """Pre-norm factorised block: x + conv3x3(norm(x)) across space, x + attn(norm(x)) across time,
    then x + mlp(norm(x)) per token. With ``film`` the action rescales and shifts all three inputs."""

    def __init__(self, dim: int, heads: int, film: bool = False):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        # depthwise (each feature its own 3x3; see the module docstring), with *circular* padding: the
        # dot lives on a torus, so a cell on the right edge must see the left edge (zero padding made a
        # wrapping dot vanish; the point mass's arena is walled, so wrapping changes nothing there)
        self.space = nn.Conv2d(dim, dim, 3, padding=1, groups=dim, padding_mode="circular")
        self.time = TemporalAttention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.film = nn.Linear(dim, 6 * dim) if film else None
        if film:  # start as the identity modulation (gamma = beta = 0), so training begins like chapter 2
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, film=None, act_tok=None) -> torch.Tensor:
        """x: (B, T, N, E); film: (B, T, 1, E) each frame's action embedding (FiLM only); act_tok:
        (B, T, 1, E) action tokens for the temporal attention (token method only)."""
        b, t, n, e = x.shape
        mod = [0.0] * 6  # gamma, beta for each of the three sub-layers; none without FiLM
        if self.film is not None:
            mod = self.film(film).chunk(6, dim=-1)  # each (B, T, 1, E), the same for every cell
        h = self.norm1(x) * (1 + mod[0]) + mod[1]
        grid = h.reshape(b * t, GRID, GRID, e).permute(0, 3, 1, 2)  # (B*T, E, 16, 16)
        x = x + self.space(grid).permute(0, 2, 3, 1).reshape(b, t, n, e)
        act = None if act_tok is None else self.norm2(act_tok)
        x = x + self.time(self.norm2(x) * (1 + mod[2]) + mod[3], act)
        return x + self.mlp(self.norm3(x) * (1 + mod[4]) + mod[5])


class ActionDynamics(nn.Module):
    """Local space-time transformer over latent cells that predicts frame t+1 from frames <= t and a_t.

    Args:
        method: "concat", "token", "film" or "none" (ignores the action).
        action_kind: "discrete" (n_actions choices) or "continuous" (action_dim numbers in [-1, 1]).
        dim, depth, heads: transformer width, number of blocks (2, as train.py trains it: two 3x3 layers
            see 2 cells, 8 px, on each side, and a move is at most 3.2 px), attention heads.
        max_frames: the longest clip it reads (its context window).
        head: "classification" (logits of each cell's FSQ digits) or "regression" (the values).
    """

    def __init__(
        self, method="film", action_kind="discrete", n_actions=5, action_dim=2, dim=64, depth=2, heads=4,
        max_frames=3, head="classification", levels=(8, 5, 5, 5),
    ):  # fmt: skip
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if head not in ("regression", "classification"):
            raise ValueError(f"head must be 'regression' or 'classification', got {head!r}")
        self.method, self.max_frames, self.head_kind, self.levels = method, max_frames, head, tuple(levels)
        self.actions = ActionEncoder(action_kind, dim, n_actions, action_dim)
        self.embed = nn.Linear(TOKEN_DIM + (dim if method == "concat" else 0), dim)
        self.pos_space = nn.Parameter(torch.randn(N_TOKENS, dim) * 0.02)  # which cell (walls are fixed)
        self.pos_time = nn.Parameter(torch.randn(max_frames, dim) * 0.02)  # which frame of the clip
        self.act_type = nn.Parameter(torch.randn(dim) * 0.02)  # "I am an action token" (token only)
        self.blocks = nn.ModuleList(Block(dim, heads, film=method == "film") for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, TOKEN_DIM if head == "regression" else sum(self.levels))

    def forward(self, tok: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Read a clip and the actions taken in it; predict every next frame.

        Args:
            tok: (B, T, N, P) tokens of frames 0..T-1, T <= max_frames.
            actions: (B, T) int64 (discrete) or (B, T, A) float (continuous): a_t taken at frame t.
        Returns:
            regression: (B, T, N, P) predicted tokens of frames 1..T;
            classification: (B, T, N, 1, sum(levels)) logits of each cell's FSQ digits.
        """
        if tok.dim() != 4 or tok.shape[1] > self.max_frames or tuple(tok.shape[2:]) != (N_TOKENS, TOKEN_DIM):
            raise ValueError(
                f"expected tokens (B, T<={self.max_frames}, {N_TOKENS}, {TOKEN_DIM}), got {tuple(tok.shape)}"
            )
        b, t, n, _ = tok.shape
        self.actions.check(actions, b, t)
        a = self.actions(actions)[:, :, None]  # (B, T, 1, E)
        if self.method == "none":
            a = torch.zeros_like(a)  # same computation, no information: the action-blind control
        if self.method == "concat":  # every cell of frame t gets a_t glued to its values
            x = self.embed(torch.cat([tok, a.expand(-1, -1, n, -1)], dim=-1))  # (B, T, N, E)
        else:
            x = self.embed(tok)  # (B, T, N, E)
        x = x + self.pos_space + self.pos_time[:t, None]  # (B, T, N, E)
        act_tok = None
        if self.method == "token":  # one action token per frame, in every cell's temporal attention
            act_tok = a + self.act_type + self.pos_time[:t, None]  # (B, T, 1, E)
        for block in self.blocks:
            x = block(x, film=a, act_tok=act_tok)
        y = self.head(self.norm(x))  # (B, T, N, P) or (B, T, N, sum(levels))
        if self.head_kind == "regression":
            return tok + y  # predict the change: most of the frame does not move
        # (B, T, N, 1, sum(levels)): the singleton is the number of latent cells per token, 1 here (the
        # global transformer of NOTES.md held 4x4 = 16 per token); tokens_to_digits's targets (..., 1, D)
        # and to_tokens's flatten(-2) keep that layout
        return y[:, :, :, None]

    def to_tokens(self, out: torch.Tensor, snap: bool = True) -> torch.Tensor:
        """The model's output -> tokens (..., N, P): argmax digits (classification), or the regression
        values snapped to the FSQ grid (``snap``) or left as they are."""
        if self.head_kind == "regression":
            return snap_to_grid(out, self.levels) if snap else out
        parts, start = [], 0
        for lv in self.levels:  # one softmax per FSQ channel
            digit = out[..., start : start + lv].argmax(-1)  # (..., 1) in [0, lv)
            parts.append((digit - lv // 2).float() / (lv // 2))  # back to FSQ's values in [-1, 1]
            start += lv
        return torch.stack(parts, dim=-1).flatten(-2)  # (..., P = D)


def tokens_to_digits(tok: torch.Tensor, levels) -> torch.Tensor:
    """FSQ tokens (..., P) -> the integer digit of each channel (..., 1, D): class targets."""
    half = torch.tensor([lv // 2 for lv in levels], device=tok.device)
    return torch.round(tok[..., None, :] * half + half).long()


def classification_loss(logits: torch.Tensor, digits: torch.Tensor, levels) -> torch.Tensor:
    """Cross-entropy summed over FSQ channels: logits (..., sum(levels)), digits (..., D). From chapter 2."""
    loss, start = 0.0, 0
    for d, lv in enumerate(levels):
        logp = logits[..., start : start + lv].log_softmax(-1)  # (..., lv)
        loss = loss - logp.gather(-1, digits[..., d : d + 1]).mean()
        start += lv
    return loss
