"""The convolutional encoder and decoder that both chapter-1 codecs share.

Copied from chapter 1 (1.video-encoder-decoder/models/codec.py) so this chapter stands alone; not from
chapter 2's copy, which adds a mask giving every empty cell one code (not tried here).

Shape key used in this chapter's comments:
    B batch, C channels, H/W frame height/width (64), h/w latent grid height/width (16), D latent dim.

A 64x64 RGB frame goes down two stride-2 convolutions to a 16x16 grid of D-dimensional latents: each
latent "token" summarises a 4x4 pixel patch plus its surroundings. The decoder mirrors the encoder.
Residual blocks let the small network be deep enough to place a 3-pixel dot exactly without slowing
training much.

New in this chapter: every convolution pads *circularly* (wraps around), because the dot lives on a
torus. With chapter 1's zero padding a dot crossing the frame's edge got codes found nowhere else, so
the dynamics model had to learn the edge separately and, with little data there, lost the dot when it
wrapped (measured in the NOTES.md pilot with this ring-weighted codec still zero-padded, a circular
transformer and self-feeding: 31 of 200 held-out 10-step dot trajectories wrap; their error was 7.8 px
against 0.96 px for the others). Wrapped, shifting a frame by 4 px shifts its latent grid by exactly one cell.
The point-mass arena is walled on every side, so wrapping changes nothing there.
"""

import torch
import torch.nn.functional as F
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


def wrap_conv(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Conv2d:
    """A convolution that pads circularly by k // 2 (3x3) or 1 (4x4, stride 2): the frame is a torus."""
    return nn.Conv2d(c_in, c_out, k, stride=stride, padding=1 if k == 4 else k // 2, padding_mode="circular")


class WrapUp(nn.Module):
    """x2 up-sampling (transposed convolution, kernel 4, stride 2) on a torus.

    torch's ConvTranspose2d has no circular padding, so we wrap the input by one cell on every side,
    transpose-convolve without padding ((h + 2 - 1) * 2 + 4 = 2h + 6 pixels) and crop 3 on each side:
    exactly the padding-1 transposed convolution, with the wrapped cells in place of zeros.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.ConvTranspose2d(c_in, c_out, 4, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, h, w) -> (B, C_out, 2h, 2w)."""
        return self.conv(F.pad(x, (1, 1, 1, 1), mode="circular"))[..., 3:-3, 3:-3]


class ResBlock(nn.Module):
    """x + conv(act(conv(act(x)))): two 3x3 convolutions on a residual path, shape preserved."""

    def __init__(self, ch: int):
        super().__init__()
        self.net = nn.Sequential(nn.SiLU(), wrap_conv(ch, ch, 3), nn.SiLU(), wrap_conv(ch, ch, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, h, w) -> (B, C, h, w)."""
        return x + self.net(x)


class Encoder(nn.Module):
    """Frames (B, 3, 64, 64) in [0, 1] -> latent grid (B, out_dim, 16, 16)."""

    def __init__(self, out_dim: int, ch: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            wrap_conv(3, ch, 4, stride=2),  # (B, ch, 32, 32)
            ResBlock(ch),
            wrap_conv(ch, 2 * ch, 4, stride=2),  # (B, 2ch, 16, 16)
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

    def __init__(self, in_dim: int, ch: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            wrap_conv(in_dim, 2 * ch, 3),  # (B, 2ch, 16, 16)
            ResBlock(2 * ch),
            ResBlock(2 * ch),
            nn.SiLU(),
            WrapUp(2 * ch, ch),  # (B, ch, 32, 32)
            ResBlock(ch),
            nn.SiLU(),
            WrapUp(ch, 3),  # (B, 3, 64, 64)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, in_dim, 16, 16) -> (B, 3, 64, 64). A linear output (no sigmoid) can hit exactly 0
        on the black background, which is where most of the PSNR is won or lost."""
        return (self.net(z) + 1) / 2


def weighted_mse(recon: torch.Tensor, target: torch.Tensor, fg_weight: float) -> torch.Tensor:
    """Mean squared error in which the object and the pixels around it count ``fg_weight`` times more.

    Why: a dot 3 px across lights 9 pixels, 0.2 % of a 64x64 frame. With plain MSE, predicting black
    everywhere is already an excellent solution (28.1 dB on dot frames: chapter 1's all_black baseline)
    and the codec learns to erase small objects. Weighting each pixel by 1 + (fg_weight - 1) *
    brightness makes the object matter. The brightness is spread to each pixel's 3x3 neighbourhood (a
    max-pool) so that the dark ring around the object counts as much as the object: with chapter 1's
    weight (the pixel's own brightness) the codec drew the dot as a lopsided 5x5 blur, and the blur's
    centroid sat 0.78 px from the true position on average; with the ring weighted it was 0.40 px at the
    same 600 steps (a pilot with zero padding, NOTES.md).

    Args:
        recon, target: (B, 3, H, W). fg_weight: 1 gives plain MSE.
    Returns: a scalar.
    """
    bright = target.amax(dim=1, keepdim=True)  # (B, 1, H, W)
    near = F.max_pool2d(bright, 3, stride=1, padding=1)  # (B, 1, H, W): the object and its 1-px ring
    weight = 1.0 + (fg_weight - 1.0) * near
    return (weight * (recon - target).pow(2)).mean()
