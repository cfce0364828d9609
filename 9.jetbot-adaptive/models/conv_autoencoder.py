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
from torch.nn import functional as F

from .codec_common import check_frames, frozen_call, relative_weighted_mse


class WrapPad(torch.autograd.Function):
    """Pad (B, C, h, w) circularly by one cell on each side -> (B, C, h+2, w+2), with a hand-written backward.

    Both are about speed, measured on one CPU core (batch 16); the numbers are the same as torch's own:
    - the backward folds the border's gradient back onto the cells it was copied from (rows, then
      columns). Autograd's backward of the circular pad is a chain of sliced copies into zero-filled
      tensors, 4x slower (3.7 ms against 1.0 ms for a (16, 16, 32, 32) input), and the codec pads before
      every one of its 3x3 and 4x4 convolutions;
    - the padded tensor is laid out channels-last (the C values of a pixel side by side in memory),
      where the CPU's convolutions run faster: a 16-channel 3x3 convolution at 32x32, forward and
      backward, 2.9 ms against 5.1 ms.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, h, w) -> (B, C, h+2, w+2), channels-last in memory."""
        return F.pad(x, (1, 1, 1, 1), mode="circular").contiguous(memory_format=torch.channels_last)

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> torch.Tensor:
        """g: (B, C, h+2, w+2), the gradient of the padded tensor -> (B, C, h, w)."""
        rows = g[..., 1:-1, :].clone()  # (B, C, h, w+2): the top border row was a copy of the last row...
        rows[..., 0, :] += g[..., -1, :]
        rows[..., -1, :] += g[..., 0, :]
        out = rows[..., 1:-1].clone()  # (B, C, h, w): ...and the same for the columns
        out[..., 0] += rows[..., -1]
        out[..., -1] += rows[..., 0]
        return out


class WrapConv2d(nn.Conv2d):
    """A convolution on a torus: the input padded circularly by one cell (WrapPad), then no zero padding.

    The same computation as ``nn.Conv2d(..., padding=1, padding_mode="circular")`` and the same weights
    (checkpoints load either way), with the faster backward of WrapPad."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int = 1):
        """c_in, c_out: channels; k: kernel side (3, or 4 with stride 2); stride: 1 or 2."""
        super().__init__(c_in, c_out, k, stride=stride, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, h, w) -> (B, C_out, h / stride, w / stride)."""
        return super().forward(WrapPad.apply(x))


def conv(c_in: int, c_out: int, k: int, stride: int = 1, wrap: bool = False) -> nn.Conv2d:
    """A convolution padded by k // 2 (3x3) or 1 (4x4, stride 2); ``wrap`` pads circularly (a torus)."""
    if wrap:
        return WrapConv2d(c_in, c_out, k, stride)
    return nn.Conv2d(c_in, c_out, k, stride=stride, padding=1 if k == 4 else k // 2)


class Up(nn.Module):
    """x2 up-sampling (transposed convolution, kernel 4, stride 2), optionally on a torus (as chapter 3).

    ConvTranspose2d has no circular padding, so with ``wrap`` the input is wrapped by one cell on every
    side and transpose-convolved with padding 3, which drops 3 pixels of its (2h + 6)-pixel output on
    each side: exactly the padding-1 transposed convolution with the wrapped cells in place of zeros.
    """

    def __init__(self, c_in: int, c_out: int, wrap: bool = False):
        """c_in, c_out: channels; wrap: pad circularly."""
        super().__init__()
        self.wrap = wrap
        self.conv = nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=3 if wrap else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, h, w) -> (B, C_out, 2h, 2w)."""
        return self.conv(WrapPad.apply(x) if self.wrap else x)


class ResBlock(nn.Module):
    """x + conv(act(conv(act(x)))): two 3x3 convolutions on a residual path, shape preserved."""

    def __init__(self, ch: int, wrap: bool = False):
        """ch: channels in and out; wrap: pad circularly."""
        super().__init__()
        self.net = nn.Sequential(nn.SiLU(), conv(ch, ch, 3, wrap=wrap), nn.SiLU(), conv(ch, ch, 3, wrap=wrap))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, h, w) -> (B, C, h, w)."""
        return x + self.net(x)


class ConvAutoencoder(nn.Module):
    """Frames (B, 3, S, S) <-> tokens (B, N, D) through stride-2 convolutions and back.

    ``stride`` 8 (three stages) gives an 8x8 grid of tokens for a 64x64 frame, 4 (two stages) a 16x16
    grid: each token then covers a 4x4-pixel patch, so a small object's position is mostly *which*
    token holds it rather than a sub-token code, which the decoder redraws far more precisely (README).
    """

    kind = "cnn"

    def __init__(
        self,
        img_size: int = 64,
        latent_dim: int = 64,
        ch: int = 16,
        fg_weight: float = 20.0,
        wrap: bool = False,
        stride: int = 8,
    ):
        """img_size: S (divisible by stride); latent_dim: D; ch: width of the first stage; fg_weight: how
        much more a bright pixel counts in the reconstruction loss; wrap: pad circularly (the world is a
        ring); stride: 4 or 8, the side of the pixel square behind one token."""
        super().__init__()
        if stride not in (4, 8) or img_size % stride:
            raise ValueError(f"stride must be 4 or 8 and divide img_size, got {stride} and {img_size}")
        self.img_size, self.latent_dim, self.fg_weight = img_size, latent_dim, fg_weight
        self.grid = img_size // stride
        self.n_tokens = self.grid**2
        w, widths = wrap, [ch * 2**i for i in range(stride.bit_length() - 1)]  # [ch, 2ch(, 4ch)]
        enc, c_in = [], 3
        for c in widths:  # each stage halves the side: (B, c, S/2^k, S/2^k)
            enc += [conv(c_in, c, 4, 2, w), ResBlock(c, w)]
            c_in = c
        self.enc = nn.Sequential(*enc, ResBlock(c_in, w), nn.SiLU(), nn.Conv2d(c_in, latent_dim, 1))
        dec = [conv(latent_dim, c_in, 3, 1, w), ResBlock(c_in, w), ResBlock(c_in, w)]  # (B, c, g, g)
        for c_out in [*widths[-2::-1], 3]:  # each stage doubles the side, the last one paints RGB
            dec += [nn.SiLU(), Up(c_in, c_out, w)] + ([ResBlock(c_out, w)] if c_out != 3 else [])
            c_in = c_out
        self.dec = nn.Sequential(*dec)
        nn.init.constant_(self.dec[-1].conv.bias, -1.0)  # start by painting black: most pixels of a robot's
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
        """Encode and decode x (B, 3, S, S); returns (relative weighted MSE, reconstruction, info dict).

        Relative (0 perfect, 1 = all black), like the predictor's pixel loss, so that in a joint step
        the two speak on one scale."""
        z = self.encode(x)
        recon = self.decode(z)
        return relative_weighted_mse(recon, x, self.fg_weight), recon, {"mask_ratio": 0.0, "tokens": z}
