"""Neural memory: an associative memory whose weights are written at test time, by gradient steps.

Keep everything and attend to it (the lookup bank) costs memory and compute that grow with what is
kept. The other way is to *compress* the past into a fixed-size set of weights, as Titans (Behrouz et
al., 2025) does with its neural long-term memory: the memory is a map M from keys to values, and to
remember a token is to take a gradient step that makes M(k) closer to v.

Here M is a matrix (D_v x D_k) per episode, so ``M(k) = M k`` and the gradient of the associative loss
``l(M) = 1/2 sum_n ||M k_n - v_n||^2`` over one frame's N tokens is ``sum_n (M k_n - v_n) k_n^T``
(the delta rule: only what M does not already know is written). A write, when a frame leaves the
predictor's context, with momentum (Titans' "past surprise") and a forgetting decay:

    S <- eta * S - theta * grad l(M)          momentum eta, learning rate theta
    M <- (1 - alpha) * M + S                  forgetting: every write shrinks the old content

so what was written n writes ago survives with a factor of about (1 - alpha)^n. The state (M, S) is
per episode: it starts at zero at every episode (``reset``) and is never stored in the module, so two
episodes cannot share it. Keys, values and queries come from learned projections (trained through
the writes by backpropagation, the outer loop); the read goes back into the tokens through a gate.

Shape key: B batch, T frames, N tokens per frame, E predictor width, K key dim, V value dim.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class NeuralMemory(nn.Module):
    """Per-episode linear associative memory, written by a gradient step with momentum and decay.

    Args:
        dim: E, the width of the tokens written and read. key_dim, value_dim: K and V.
        lr: theta, the write's learning rate. momentum: eta. decay: alpha, the forgetting per write.
    """

    def __init__(self, dim: int, key_dim: int = 32, value_dim: int = 32, lr: float = 0.5,
                 momentum: float = 0.5, decay: float = 0.05):  # fmt: skip
        super().__init__()
        self.lr, self.momentum, self.decay = lr, momentum, decay
        self.key, self.value = nn.Linear(dim, key_dim), nn.Linear(dim, value_dim)  # what is written
        self.query = nn.Linear(dim, key_dim)  # what is asked
        self.out = nn.Linear(value_dim, dim)  # the answer, back to the token width
        self.gate = nn.Linear(dim, dim)  # how much of the answer each token takes

    def reset(self, batch: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """The empty state of a new episode: M and S, both (B, V, K) zeros."""
        shape = (batch, self.value.out_features, self.key.out_features)
        return torch.zeros(shape, device=device), torch.zeros(shape, device=device)

    def write(self, state, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One gradient step of the associative loss on a frame's tokens (B, N, E); returns the new state.

        A new (M, S) is returned and the old one is left as it was: the caller keeps the state.
        """
        m, s = state  # (B, V, K) each
        k = F.normalize(self.key(tokens), dim=-1)  # (B, N, K) unit keys: a step of theta = 1 writes exactly
        v = self.value(tokens)  # (B, N, V)
        error = torch.einsum("bvk,bnk->bnv", m, k) - v  # (B, N, V): M k - v, what M gets wrong
        grad = torch.einsum("bnv,bnk->bvk", error, k)  # (B, V, K): d/dM of 1/2 sum_n ||M k_n - v_n||^2
        s = self.momentum * s - self.lr * grad  # momentum: the surprise of past writes carries on
        return (1 - self.decay) * m + s, s  # forgetting, then the step

    def read(self, m: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Read states m (B, T, V, K) with the tokens h (B, T, N, E) of those frames: h + gate * answer."""
        q = F.normalize(self.query(h), dim=-1)  # (B, T, N, K)
        answer = self.out(torch.einsum("btvk,btnk->btnv", m, q))  # (B, T, N, E): M q, to the width
        return h + torch.sigmoid(self.gate(h)) * answer

    def states(self, x: torch.Tensor, window: int) -> torch.Tensor:
        """The memory each query frame may read: frames 0..t-window written, in order, from an empty M.

        Args:
            x: (B, T, N, E) the tokens of every frame (the predictor's input tokens).
            window: the context; frame j is written when it leaves it (read by frames >= j + window).
        Returns:
            (B, T, V, K): for query frame t, M after writing frames 0..t-window (zeros if none).
        """
        b, t = x.shape[:2]
        state = self.reset(b, x.device)
        ms = [state[0]]  # ms[s]: M after writing frames 0..s-1
        for j in range(max(0, t - window)):  # the last frames never leave the context in this clip
            state = self.write(state, x[:, j])
            ms.append(state[0])
        idx = [max(0, i - window + 1) for i in range(t)]  # query frame i reads ms[i - window + 1]
        return torch.stack([ms[s] for s in idx], dim=1)
