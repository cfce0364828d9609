"""The attentive probe: how much does a frozen encoder's output know about a label it never saw?

A linear probe on the mean token would test whether the label is *linearly* in the average; V-JEPA
uses an attentive probe instead: one learned query cross-attends over all the frozen tokens, so the
probe can pick the few tokens that matter (where the ball is), then a linear layer classifies.

Shape key: B batch, N tokens, D feature dim, h heads, d = D / h.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn


class AttentiveProbe(nn.Module):
    """A learned query, cross-attention over frozen tokens (written out), then a linear classifier.

    Args:
        dim: D. n_classes: outputs. heads: h.
    """

    def __init__(self, dim: int, n_classes: int, heads: int = 4):
        super().__init__()
        self.heads = heads
        self.query = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.norm = nn.LayerNorm(dim)
        self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, n_classes))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens: (B, N, D) frozen features -> logits (B, n_classes)."""
        b, n, dim = tokens.shape
        x = self.norm(tokens)
        d = dim // self.heads
        k = self.k(x).view(b, n, self.heads, d).transpose(1, 2)  # (B, h, N, d)
        v = self.v(x).view(b, n, self.heads, d).transpose(1, 2)  # (B, h, N, d)
        q = self.query.view(1, self.heads, 1, d)  # (1, h, 1, d): one query, shared by every clip
        weights = (q @ k.transpose(-2, -1) / math.sqrt(d)).softmax(dim=-1)  # (B, h, 1, N)
        pooled = (weights @ v).reshape(b, dim)  # (B, D)
        return self.head(pooled)
