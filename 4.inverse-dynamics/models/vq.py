"""Vector quantisation (VQ-VAE, van den Oord et al., 2017): the bottleneck Genie's latent action model uses.

Shape key: B batch, D code dims, K codebook size.

A learned codebook of K vectors; the encoder's output z is replaced by its nearest codebook vector e_k.
Rounding to the nearest vector has no gradient, so (as FSQ) the backward pass copies the gradient of
e_k to z (straight-through). The codebook learns from two extra terms:

    codebook loss   ||sg(z) - e_k||^2        moves the chosen vector towards the encoder's output
    commitment      beta * ||z - sg(e_k)||^2  keeps the encoder near its vector (sg = stop-gradient)

The weakness this chapter shows: a vector that is never chosen never moves. If early in training one
vector is nearest to everything, the others die and every frame pair gets the same code (collapse).
"""

from __future__ import annotations

import torch
from torch import nn


class VectorQuantizer(nn.Module):
    """z (B, D) -> (nearest codebook vector (B, D) with a straight-through gradient, index (B,), loss).

    Args:
        n_codes: K codebook vectors. dim: D. beta: weight of the commitment term.
    """

    def __init__(self, n_codes: int = 8, dim: int = 4, beta: float = 0.25):
        super().__init__()
        self.codebook = nn.Parameter(torch.randn(n_codes, dim) * 0.5)  # (K, D)
        self.beta, self.codebook_size, self.dim = beta, n_codes, dim

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z: (B, D) -> zq (B, D), index (B,) int64, the codebook + commitment loss (a scalar)."""
        dist = torch.cdist(z, self.codebook)  # (B, K) Euclidean distances
        idx = dist.argmin(dim=1)  # (B,) the nearest vector
        e = self.codebook[idx]  # (B, D)
        loss = (z.detach() - e).pow(2).mean() + self.beta * (z - e.detach()).pow(2).mean()
        return z + (e - z).detach(), idx, loss  # forward: e; backward: identity to z

    def lookup(self, idx: torch.Tensor) -> torch.Tensor:
        """Indices (B,) -> codebook vectors (B, D)."""
        return self.codebook[idx]
