"""The frozen encoder of part 2: a small convolutional autoencoder, one token per cell.

Why not the DINO of part 1? The memory lesson is about the predictor, and the read-out of recall needs
features that *keep* an object's colour and cell, plus a decoder to look at them. This world has no
nuisance for DINO to learn to ignore, and DINO's loss never asks for colour; an autoencoder's loss
asks for exactly what recall reads. It is trained first, on the training episodes' frames, then
frozen: every predictor of part 2 works in the same feature space.

Shape key: B batch, N = 9 tokens (the 3x3 cells), D feature dim.
"""

from __future__ import annotations

import torch
from torch import nn


class FrameAutoencoder(nn.Module):
    """Frames (B, 3, 24, 24) in [0, 1] <-> tokens (B, N=9, D): three stride-2 convolutions each way.

    Each output position of the encoder covers one 8x8 cell (and a little of its neighbours), so token n
    describes cell n: what a memory has to store and give back.
    """

    def __init__(self, feat_dim: int = 16, ch: int = 32):
        super().__init__()
        self.feat_dim = feat_dim
        self.enc = nn.Sequential(
            nn.Conv2d(3, ch, 4, 2, 1), nn.SiLU(),  # (B, ch, 12, 12)
            nn.Conv2d(ch, ch, 4, 2, 1), nn.SiLU(),  # (B, ch, 6, 6)
            nn.Conv2d(ch, feat_dim, 4, 2, 1),  # (B, D, 3, 3)
        )  # fmt: skip
        self.dec = nn.Sequential(
            nn.ConvTranspose2d(feat_dim, ch, 4, 2, 1), nn.SiLU(),  # (B, ch, 6, 6)
            nn.ConvTranspose2d(ch, ch, 4, 2, 1), nn.SiLU(),  # (B, ch, 12, 12)
            nn.ConvTranspose2d(ch, 3, 4, 2, 1),  # (B, 3, 24, 24)
        )  # fmt: skip

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, 24, 24) in [0, 1] -> tokens (B, 9, D), row by row."""
        if x.dim() != 4 or tuple(x.shape[1:]) != (3, 24, 24) or not torch.is_floating_point(x):
            raise ValueError(
                f"expected float frames (B, 3, 24, 24) in [0, 1], got {tuple(x.shape)} {x.dtype}"
            )
        return self.enc(x * 2 - 1).flatten(2).transpose(1, 2)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, 9, D) -> frames (B, 3, 24, 24), unbounded (clamp to [0, 1] to look)."""
        b, n, d = z.shape
        return self.dec(z.transpose(1, 2).reshape(b, d, 3, 3)) + 0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct x: (B, 3, 24, 24) -> (B, 3, 24, 24)."""
        return self.decode(self.encode(x))
