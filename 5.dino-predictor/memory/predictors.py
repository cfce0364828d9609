"""The predictors of part 2: one frame-causal ViT, four ways to see the past.

    none     a context of ``window`` frames, nothing else (window 3: part 1's predictor; window = the
             whole clip: the long-context upper bound)
    lookup   the same 3-frame context, plus a bank: the tokens of frames that left the context are kept,
             ``capacity`` frames of them, first in first out, and read as extra keys and values
    neural   the same 3-frame context, plus an associative memory written with every frame that leaves
             it (neural_memory.py), read after the first block through a gate

Training is teacher-forced over a whole episode in one pass, as in part 1: the output at frame t is the
prediction of frame t+1, and every mask below only lets frame t see frames <= t.

Shape key: B batch, T frames, N = 9 tokens per frame, D feature dim (the frozen autoencoder's), E width,
H heads, C bank capacity (frames), M = C * N bank tokens, L = T * N tokens of the clip.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .neural_memory import NeuralMemory


def window_mask(t: int, n: int, window: int) -> torch.Tensor:
    """(L, L) bool: token i may attend to token j iff 0 <= frame(i) - frame(j) < window."""
    frame = torch.arange(t).repeat_interleave(n)  # (L,) the frame of every token
    lag = frame[:, None] - frame[None, :]  # (L, L)
    return (lag >= 0) & (lag < window)


def bank_index(t: int, window: int, capacity: int) -> torch.Tensor:
    """(T, C) long: the frames in query frame i's bank, newest first; -1 marks an empty slot.

    Frame j leaves the context of a ``window``-frame predictor at frame j + window; the bank keeps the
    last ``capacity`` frames that left (first in, first out), so frame i's bank is
    i - window, i - window - 1, ..., i - window - capacity + 1: only frames the context no longer holds.
    """
    j = torch.arange(t)[:, None] - window - torch.arange(capacity)[None, :]  # (T, C)
    return j.clamp(min=-1)


def bank_ages(t: int, n: int, window: int, capacity: int) -> torch.Tensor:
    """(L, L) long: for query token i and token j, the slot (age) of j's frame in i's bank, or -1 if
    that frame is not in the bank. Age c = the frame left the context c frames ago (0 = just now)."""
    frame = torch.arange(t).repeat_interleave(n)  # (L,)
    age = frame[:, None] - frame[None, :] - window  # (L, L)
    return torch.where((age >= 0) & (age < capacity), age, torch.full_like(age, -1))


class Attention(nn.Module):
    """Multi-head attention over the context tokens and, optionally, a bank of stored tokens."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x, mask, bank=None) -> torch.Tensor:
        """x: (B, L, E); mask: (L, L) bool, True where token i may attend to token j.

        bank: None, or (x0, ages, age_k, age_v): the stored tokens x0 (B, L, E) (normed inputs of every
        frame), ages (L, L) from ``bank_ages`` (-1: not in i's bank), and the age embeddings (C, H, E/H)
        added to a stored token's key and value. One softmax runs over the context and the bank together.
        Returns (B, L, E).
        """
        b, length, e = x.shape
        dh = e // self.heads
        q, k, v = self.qkv(x).view(b, length, 3, self.heads, dh).permute(2, 0, 3, 1, 4)  # (B, H, L, E/H)
        scores = (q @ k.transpose(-2, -1) / math.sqrt(dh)).masked_fill(~mask, float("-inf"))  # (B, H, L, L)
        if bank is None:
            return self.out((scores.softmax(-1) @ v).transpose(1, 2).reshape(b, length, e))
        x0, ages, age_k, age_v = bank
        _, k0, v0 = self.qkv(x0).view(b, length, 3, self.heads, dh).permute(2, 0, 3, 1, 4)  # stored tokens
        # q . (k_j + a_c) = q . k_j + q . a_c, with c = age(i, j): the age term is gathered, not recomputed
        q_age = torch.einsum("bhld,chd->bhlc", q, age_k)  # (B, H, L, C)
        s_bank = q @ k0.transpose(-2, -1) + q_age.gather(-1, ages.clamp(min=0).expand(b, self.heads, -1, -1))
        s_bank = (s_bank / math.sqrt(dh)).masked_fill(ages < 0, float("-inf"))  # (B, H, L, L) bank only
        w = torch.cat([scores, s_bank], dim=-1).softmax(dim=-1)  # (B, H, L, 2L): context and bank compete
        w_ctx, w_bank = w[..., :length], w[..., length:]
        onehot = torch.nn.functional.one_hot(ages.clamp(min=0), len(age_v)) * (ages >= 0)[..., None]
        w_age = torch.einsum("bhlj,ljc->bhlc", w_bank, onehot.to(w.dtype))  # (B, H, L, C) weight per age
        y = w_ctx @ v + w_bank @ v0 + torch.einsum("bhlc,chd->bhld", w_age, age_v)  # (B, H, L, E/H)
        return self.out(y.transpose(1, 2).reshape(b, length, e))


class Block(nn.Module):
    """Pre-norm transformer block; with a bank, the stored tokens are keys and values too."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 2):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x, mask, bank=None):
        """x: (B, L, E) -> (B, L, E); bank: None or (x0, ages, age_k, age_v), x0 normed here."""
        if bank is not None:
            bank = (self.norm1(bank[0]), *bank[1:])
        x = x + self.attn(self.norm1(x), mask, bank)
        return x + self.mlp(self.norm2(x))


class MemoryPredictor(nn.Module):
    """Predict every next frame's tokens from a context window, optionally with a memory.

    Args:
        feat_dim: D. n_tokens: N. window: frames of context (the current one included).
        memory: "none", "lookup" or "neural". capacity: the lookup bank's size in frames.
        dim, depth, heads: the ViT's size. n_actions: discrete actions. neural: NeuralMemory's settings.
    """

    def __init__(self, feat_dim: int, n_tokens: int = 9, window: int = 3, memory: str = "none",
                 capacity: int = 8, dim: int = 64, depth: int = 3, heads: int = 4, n_actions: int = 2,
                 neural: dict | None = None):  # fmt: skip
        super().__init__()
        if memory not in ("none", "lookup", "neural"):
            raise ValueError(f"memory must be none, lookup or neural, got {memory!r}")
        self.feat_dim, self.n_tokens, self.window, self.memory = feat_dim, n_tokens, window, memory
        self.capacity = capacity if memory == "lookup" else 0
        self.action_emb = nn.Embedding(n_actions, 16)
        self.inp = nn.Linear(feat_dim + 16, dim)  # [z_t,n | e(a_t)] -> width, concatenated as in part 1
        self.pos = nn.Parameter(torch.randn(1, 1, n_tokens, dim) * 0.02)  # which cell
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        if memory == "lookup":  # one age embedding per bank slot, for keys and for values
            self.age_k = nn.Parameter(torch.randn(depth, capacity, heads, dim // heads) * 0.02)
            self.age_v = nn.Parameter(torch.randn(depth, capacity, heads, dim // heads) * 0.02)
        if memory == "neural":
            self.neural = NeuralMemory(dim, **(neural or {}))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, feat_dim)  # the change of each token
        nn.init.zeros_(self.head.weight)  # start as copy-last
        nn.init.zeros_(self.head.bias)

    def tokens(self, z: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The input tokens (B, T, N, E) of features z (B, T, N, D) and actions (B, T)."""
        a = self.action_emb(actions)[:, :, None].expand(-1, -1, z.shape[2], -1)  # (B, T, N, 16): every token
        return self.inp(torch.cat([z, a], dim=-1)) + self.pos

    def forward(self, z: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Teacher-forced prediction of every next frame.

        Args:
            z: (B, T, N, D) features of frames 0..T-1 of each episode; actions: (B, T) long, a_t at frame t.
        Returns:
            (B, T, N, D): the predicted features of frames 1..T.
        """
        if z.dim() != 4 or tuple(z.shape[2:]) != (self.n_tokens, self.feat_dim):
            raise ValueError(
                f"expected features (B, T, {self.n_tokens}, {self.feat_dim}), got {tuple(z.shape)}"
            )
        b, t, n, _ = z.shape
        if actions.shape != (b, t) or actions.dtype != torch.long:
            raise ValueError(
                f"expected actions (B, T) = ({b}, {t}) long, got {tuple(actions.shape)} {actions.dtype}"
            )
        x0 = self.tokens(z, actions)  # (B, T, N, E): the tokens a bank stores, the memory writes
        mask = window_mask(t, n, self.window).to(z.device)  # (L, L)
        ages = bank_ages(t, n, self.window, self.capacity).to(z.device)  # (L, L), -1: not in the bank
        x = x0.reshape(b, t * n, -1)  # (B, L, E)
        for i, block in enumerate(self.blocks):
            bank = None
            if self.memory == "lookup":  # every block reads the same stored tokens, with its own maps
                bank = (x0.reshape(b, t * n, -1), ages, self.age_k[i], self.age_v[i])
            x = block(x, mask, bank)
            if self.memory == "neural" and i == 0:  # read after the first block: h knows the action
                ms = self.neural.states(x0, self.window)  # (B, T, V, K): what each frame may read
                x = self.neural.read(ms, x.view(b, t, n, -1)).reshape(b, t * n, -1)
        return z + self.head(self.norm(x)).view(b, t, n, -1)


@torch.no_grad()
def predict_return(model: MemoryPredictor, z: torch.Tensor, actions: torch.Tensor, r: int, steps: int = 3):
    """Open loop from the frame before the return: predict frames r .. r+steps-1 of each episode, feeding
    each prediction back in as the next input (the frames up to r-1 are true).

    Args:
        z: (B, T, N, D) true features; actions: (B, T-1) long; r: the return frame (the same for the batch).
    Returns:
        (B, steps, N, D) the predicted features of frames r .. r+steps-1.
    """
    z_in, preds = z[:, :r].clone(), []
    for k in range(steps):
        nxt = model(z_in, actions[:, : r + k])[:, -1]  # (B, N, D): the prediction of frame r + k
        preds.append(nxt)
        z_in = torch.cat([z_in, nxt[:, None]], dim=1)
    return torch.stack(preds, dim=1)
