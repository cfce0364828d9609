"""A small convolutional autoencoder: the codec the learner uses by default (see the README for the
measurement that chose it over the masked-autoencoder ViT).

Adapted from chapter 1 (1.video-encoder-decoder/models/codec.py): the same residual blocks and linear
output, one more stride-2 stage so a 64x64 frame becomes an 8x8 grid of D-dim tokens (N = 64 tokens,
the same token count as the ViT), and the same ``encode / decode / reconstruction_loss`` interface as
``MaskedAutoencoderViT`` so the learner can use either.
Shape key: B batch, S frame side (64), N tokens (64), D latent width.
"""

from __future__ import annotations

import torch
from torch import nn

from .codec_common import check_frames, frozen_call, weighted_mse


class ResBlock(nn.Module):
    """x + conv(act(conv(act(x)))): two 3x3 convolutions on a residual path, shape preserved."""

    def __init__(self, ch: int):
        """ch: channels in and out."""
        super().__init__()
        self.net = nn.Sequential(
            nn.SiLU(), nn.Conv2d(ch, ch, 3, padding=1), nn.SiLU(), nn.Conv2d(ch, ch, 3, padding=1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, h, w) -> (B, C, h, w)."""
        return x + self.net(x)


class ConvAutoencoder(nn.Module):
    """Frames (B, 3, 64, 64) <-> tokens (B, 64, D) through three stride-2 convolutions and back."""

    kind = "cnn"

    def __init__(self, img_size: int = 64, latent_dim: int = 64, ch: int = 16, fg_weight: float = 20.0):
        """img_size: S (divisible by 8); latent_dim: D; ch: width of the first stage; fg_weight: how much
        more a bright pixel counts in the reconstruction loss."""
        super().__init__()
        if img_size % 8:
            raise ValueError(f"img_size must be divisible by 8, got {img_size}")
        self.img_size, self.latent_dim, self.fg_weight = img_size, latent_dim, fg_weight
        self.grid = img_size // 8
        self.enc = nn.Sequential(
            nn.Conv2d(3, ch, 4, stride=2, padding=1),  # (B, ch, S/2, S/2)
            ResBlock(ch),
            nn.Conv2d(ch, 2 * ch, 4, stride=2, padding=1),  # (B, 2ch, S/4, S/4)
            ResBlock(2 * ch),
            nn.Conv2d(2 * ch, 4 * ch, 4, stride=2, padding=1),  # (B, 4ch, S/8, S/8)
            ResBlock(4 * ch),
            nn.SiLU(),
            nn.Conv2d(4 * ch, latent_dim, 1),  # (B, D, S/8, S/8)
        )
        self.dec = nn.Sequential(
            nn.Conv2d(latent_dim, 4 * ch, 3, padding=1),
            ResBlock(4 * ch),
            nn.SiLU(),
            nn.ConvTranspose2d(4 * ch, 2 * ch, 4, stride=2, padding=1),  # (B, 2ch, S/4, S/4)
            ResBlock(2 * ch),
            nn.SiLU(),
            nn.ConvTranspose2d(2 * ch, ch, 4, stride=2, padding=1),  # (B, ch, S/2, S/2)
            ResBlock(ch),
            nn.SiLU(),
            nn.ConvTranspose2d(ch, 3, 4, stride=2, padding=1),  # (B, 3, S, S)
        )
        nn.init.constant_(self.dec[-1].bias, -1.0)  # start by painting black: most pixels of a robot's
        # dot world are black, and a mid-grey start costs hundreds of steps just to learn the background

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, S, S) in [0, 1] -> tokens (B, N, D) in (-1, 1).

        The tanh bounds the latents: measured, with unbounded latents the predictor's latent loss fed
        a runaway growth of their scale (latent loss 0.03 -> 7 -> 6500 within 400 online steps)."""
        check_frames(x, self.img_size)
        z = torch.tanh(self.enc(x * 2 - 1))  # (B, D, g, g); bounded, see below
        return z.flatten(2).transpose(1, 2)  # (B, N, D)

    def decode(self, z: torch.Tensor, frozen: bool = False) -> torch.Tensor:
        """tokens (B, N, D) -> frames (B, 3, S, S), linear output (clamp to [0, 1] to view).
        frozen: gradients flow to z only, not to the decoder's weights."""
        b = z.shape[0]
        grid = z.transpose(1, 2).reshape(b, self.latent_dim, self.grid, self.grid)
        out = frozen_call(self.dec, grid) if frozen else self.dec(grid)
        return (out + 1) / 2  # bias -1 at init -> black

    def reconstruction_loss(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """Encode and decode x (B, 3, S, S); returns (weighted MSE, reconstruction, info dict)."""
        z = self.encode(x)
        recon = self.decode(z)
        return weighted_mse(recon, x, self.fg_weight), recon, {"mask_ratio": 0.0, "tokens": z}
