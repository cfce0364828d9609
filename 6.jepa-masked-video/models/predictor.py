"""The V-JEPA predictor: a narrow ViT that fills in the features of the masked tokens.

Input: the context encoder's output for the K visible tokens, projected down to the predictor's
narrow width, plus one learned *mask token* per hidden position, to which that position's sin-cos
embedding is added (so the predictor knows *where* it must predict). Output: the D-dim features of the
M masked tokens, compared with the target encoder's.

Why narrow? The predictor must not be so strong that the encoder can leave the work to it: the
features, not the predictor, should hold what the clip means.

Shape key: B batch, K visible tokens, M masked tokens, D encoder dim, E predictor dim.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .vit import Transformer, sincos_3d


class MaskedPredictor(nn.Module):
    """Predict masked-token features from visible-token features.

    Args:
        enc_dim: D. dim: E (narrow). depth, heads: transformer size. grid: the token grid (t, h, w).
    """

    def __init__(self, enc_dim=96, dim=48, depth=2, heads=4, grid=(4, 4, 4)):
        super().__init__()
        self.dim = dim
        self.inp = nn.Linear(enc_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.register_buffer("pos", sincos_3d(*grid, dim), persistent=False)  # (N, E)
        self.transformer = Transformer(dim, depth, heads)
        self.out = nn.Linear(dim, enc_dim)

    def forward(
        self, ctx: torch.Tensor, keep: torch.Tensor, masked: torch.Tensor, visible: bool = False
    ) -> torch.Tensor:
        """ctx: (B, K, D) context features; keep: (B, K), masked: (B, M) token indices -> (B, M, D), or
        with ``visible`` (B, K + M, D): the visible positions' predictions first, then the masked ones."""
        b, k = keep.shape
        x = self.inp(ctx) + self.pos[keep]  # (B, K, E): the visible tokens, where they are
        m = self.mask_token.expand(b, masked.shape[1], -1) + self.pos[masked]  # (B, M, E)
        x = self.transformer(torch.cat([x, m], dim=1))  # (B, K + M, E)
        return self.out(x if visible else x[:, k:])  # (B, M, D): only the masked positions are predicted
