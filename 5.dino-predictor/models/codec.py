"""A chapter-1 style convolutional autoencoder: the "reconstruction codec" the encoder table compares with.

Adapted from chapter 1 (1.video-encoder-decoder/models/codec.py: strided convolutions down, transposed
convolutions up, a foreground-weighted MSE) and shortened so that its latent grid is 4x4, the same token
count as the ViT's patches; then the same predictor can run on either. It is trained only to reconstruct
pixels, which is the alternative DINO-WM argues against.

Shape key: B batch, C channels, N = 16 latent cells (a 4x4 grid), D latent dim.
"""

from __future__ import annotations

import torch
from torch import nn

from .decoder import FeatureDecoder
from .vit import check_frames


class ConvCodec(nn.Module):
    """Frames (B, 3, 64, 64) -> latents (B, N=16, D) -> frames."""

    def __init__(self, latent_dim: int = 32, ch: int = 16):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(3, ch, 4, stride=2, padding=1),  # (B, ch, 32, 32)
            nn.SiLU(),
            nn.Conv2d(ch, 2 * ch, 4, stride=2, padding=1),  # (B, 2ch, 16, 16)
            nn.SiLU(),
            nn.Conv2d(2 * ch, 4 * ch, 4, stride=2, padding=1),  # (B, 4ch, 8, 8)
            nn.SiLU(),
            nn.Conv2d(4 * ch, 4 * ch, 4, stride=2, padding=1),  # (B, 4ch, 4, 4)
            nn.SiLU(),
            nn.Conv2d(4 * ch, latent_dim, 1),  # (B, D, 4, 4)
        )
        self.decoder = FeatureDecoder(latent_dim, ch)

    def patch_features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, 64, 64) in [0, 1] -> (B, N=16, D) one latent per 16x16-pixel cell."""
        check_frames(x)
        return self.encoder(x * 2 - 1).flatten(2).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct: (B, 3, 64, 64) -> (B, 3, 64, 64). The decoder's stop-gradient is bypassed here:
        a codec's encoder *is* trained through its decoder."""
        z = self.patch_features(x)  # (B, N, D)
        b, n, d = z.shape
        return self.decoder.net(z.transpose(1, 2).reshape(b, d, 4, 4)) + 0.5
