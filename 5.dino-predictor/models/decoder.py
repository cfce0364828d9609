"""A transposed-convolution decoder from patch features to pixels: only to *look* at predictions.

DINO-WM trains its decoder on a stop-gradient of the frozen features: the decoder learns to draw what
the features hold, but can never change them, so the world model never depends on pixels. Features that
drop the nuisance would leave the decoder only an average background to draw.

Shape key: B batch, N = 16 patch tokens (a 4x4 grid), D feature dim.
"""

from __future__ import annotations

import torch
from torch import nn


class FeatureDecoder(nn.Module):
    """Patch features (B, N=16, D) -> frames (B, 3, 64, 64), unbounded (clamp to [0, 1] to view)."""

    def __init__(self, feat_dim: int, ch: int = 16, grid: int = 4):
        super().__init__()
        self.grid = grid
        self.net = nn.Sequential(
            nn.Conv2d(feat_dim, 4 * ch, 1),  # (B, 4ch, 4, 4)
            nn.SiLU(),
            nn.ConvTranspose2d(4 * ch, 2 * ch, 4, stride=2, padding=1),  # (B, 2ch, 8, 8)
            nn.SiLU(),
            nn.ConvTranspose2d(2 * ch, 2 * ch, 4, stride=2, padding=1),  # (B, 2ch, 16, 16)
            nn.SiLU(),
            nn.ConvTranspose2d(2 * ch, ch, 4, stride=2, padding=1),  # (B, ch, 32, 32)
            nn.SiLU(),
            nn.ConvTranspose2d(ch, 3, 4, stride=2, padding=1),  # (B, 3, 64, 64)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, N, D) -> (B, 3, 64, 64). The features are detached first: the stop-gradient."""
        b, n, d = z.shape
        grid = z.detach().transpose(1, 2).reshape(b, d, self.grid, self.grid)  # (B, D, 4, 4)
        return self.net(grid) + 0.5
