"""The convolutional encoder and decoder that both chapter-1 codecs share.

Shape key used in this chapter's comments:
    B batch, C channels, H/W frame height/width (64), h/w latent grid height/width (16), D latent dim.

A 64x64 RGB frame goes down two stride-2 convolutions to a 16x16 grid of D-dimensional latents: each
latent "token" summarises a 4x4 pixel patch plus its surroundings. The decoder mirrors the encoder.
Residual blocks let the small network be deep enough to place a dot 3 px across exactly without slowing
training much.
"""

import torch
from torch import nn

FRAME_SHAPE = (3, 64, 64)  # (C, H, W) the codecs are built for


def check_frames(x: torch.Tensor) -> None:
    """Raise a ValueError naming the expected input when ``x`` is not a batch of frames.

    Expected: a float tensor (B, 3, 64, 64) with values in [0, 1].
    """
    if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x):
        kind = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected a float tensor of shape (B, 3, 64, 64) in [0, 1], got {kind}")
    if x.dim() != 4 or tuple(x.shape[1:]) != FRAME_SHAPE:
        raise ValueError(f"expected frames of shape (B, 3, 64, 64), got {tuple(x.shape)}")


class ResBlock(nn.Module):
    """x + conv(act(conv(act(x)))): two 3x3 convolutions on a residual path, shape preserved."""

    def __init__(self, ch: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.SiLU(), nn.Conv2d(ch, ch, 3, padding=1), nn.SiLU(), nn.Conv2d(ch, ch, 3, padding=1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, h, w) -> (B, C, h, w)."""
        return x + self.net(x)


class Encoder(nn.Module):
    """Frames (B, 3, 64, 64) in [0, 1] -> latent grid (B, out_dim, 16, 16)."""

    def __init__(self, out_dim: int, ch: int = 16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, ch, 4, stride=2, padding=1),  # (B, ch, 32, 32)
            ResBlock(ch),
            nn.Conv2d(ch, 2 * ch, 4, stride=2, padding=1),  # (B, 2ch, 16, 16)
            ResBlock(2 * ch),
            ResBlock(2 * ch),
            nn.SiLU(),
            nn.Conv2d(2 * ch, out_dim, 1),  # (B, out_dim, 16, 16)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, 64, 64) -> (B, out_dim, 16, 16)."""
        check_frames(x)
        return self.net(x * 2 - 1)  # centre the pixels around 0


class Decoder(nn.Module):
    """Latent grid (B, in_dim, 16, 16) -> frames (B, 3, 64, 64), unbounded (clamp to [0, 1] to view)."""

    def __init__(self, in_dim: int, ch: int = 16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_dim, 2 * ch, 3, padding=1),  # (B, 2ch, 16, 16)
            ResBlock(2 * ch),
            ResBlock(2 * ch),
            nn.SiLU(),
            nn.ConvTranspose2d(2 * ch, ch, 4, stride=2, padding=1),  # (B, ch, 32, 32)
            ResBlock(ch),
            nn.SiLU(),
            nn.ConvTranspose2d(ch, 3, 4, stride=2, padding=1),  # (B, 3, 64, 64)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, in_dim, 16, 16) -> (B, 3, 64, 64). A linear output (no sigmoid) can hit exactly 0
        on the black background, which is where most of the PSNR is won or lost."""
        return (self.net(z) + 1) / 2


def weighted_mse(recon: torch.Tensor, target: torch.Tensor, fg_weight: float) -> torch.Tensor:
    """Mean squared error in which bright (foreground) pixels count up to ``fg_weight`` times more.

    Why: the dot (radius 1.5 px) lights 9 of the 4,096 pixels of a 64x64 frame (0.2 %). With plain MSE,
    predicting black everywhere already scores 28.1 dB on dot frames, so erasing small objects costs the
    codec little. Weighting each pixel by 1 + (fg_weight - 1) * brightness makes the object matter.

    Args:
        recon, target: (B, 3, H, W). fg_weight: 1 gives plain MSE.
    Returns: a scalar.
    """
    weight = 1.0 + (fg_weight - 1.0) * target.amax(dim=1, keepdim=True)  # (B, 1, H, W)
    return (weight * (recon - target).pow(2)).mean()
