"""The video encoder: tubelet embedding, 3-D sin-cos positions, a ViT that can skip masked tokens.

A clip (B, T, 3, 64, 64) is cut into tubelets of 2 frames x p x p pixels (a 3-D convolution with
stride = kernel), giving a grid of (T/2, 64/p, 64/p) tokens; p = 16 by default (a 4x4 grid per
frame pair, as chapter 5's ViT: 16x fewer attention pairs than 8-px patches, so it trains in
minutes). ``keep`` selects the tokens the encoder may see: masked tokens are dropped *before* the
transformer, so the context encoder never sees them.

Shape key: B batch, T frames, N = (T/2)*(64/p)^2 tokens, P = (64/p)^2 tokens per frame, K kept tokens,
D feature dim.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .vit import Transformer, sincos_3d

TUBELET = 2  # frames per token
# Standardise the pixels so that the first layer starts on inputs of unit scale (measured over
# training clips of the arm world: mean 0.50, std 0.29).
PIXEL_MEAN, PIXEL_STD = 0.5, 0.3


class VideoEncoder(nn.Module):
    """Tubelet embedding + sin-cos positions + a ViT.

    Args:
        dim: D. depth, heads: transformer size. patch: tubelet side in pixels. size: frame side (64).
    """

    def __init__(self, dim: int = 96, depth: int = 4, heads: int = 4, patch: int = 16, size: int = 64):
        super().__init__()
        self.dim, self.size, self.patch = dim, size, patch
        tubelet = (TUBELET, patch, patch)
        self.embed = nn.Conv3d(3, dim, kernel_size=tubelet, stride=tubelet)  # one token per tubelet
        self.transformer = Transformer(dim, depth, heads)

    def grid(self, frames: int) -> tuple[int, int, int]:
        """The token grid (t, h, w) of a clip of ``frames`` frames."""
        return frames // TUBELET, self.size // self.patch, self.size // self.patch

    def tokens(self, video: torch.Tensor) -> torch.Tensor:
        """Embed a clip: video (B, T, 3, H, W) floats in [0, 1] -> tokens with positions (B, N, D)."""
        if video.dim() != 5 or video.shape[2:] != (3, self.size, self.size) or video.shape[1] % 2:
            raise ValueError(
                f"expected a clip (B, T, 3, {self.size}, {self.size}) with an even T, "
                f"got {tuple(video.shape)}"
            )
        x = self.embed((video.transpose(1, 2) - PIXEL_MEAN) / PIXEL_STD)  # (B, D, T/2, h, w): channels first
        x = x.flatten(2).transpose(1, 2)  # (B, N, D) in time-major order
        return x + sincos_3d(*self.grid(video.shape[1]), self.dim).to(x)

    def forward(self, video: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Encode a clip, optionally only the tokens ``keep`` (B, K) long indices -> (B, K or N, D)."""
        x = self.tokens(video)  # (B, N, D)
        if keep is not None:  # drop the masked tokens: the transformer never sees them
            x = torch.gather(x, 1, keep[..., None].expand(-1, -1, self.dim))  # (B, K, D)
        return self.transformer(x)

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """Per-frame tokens for V-JEPA 2-AC: each frame is repeated to a 2-frame tubelet and encoded alone.

        Args:
            frames: (B, T, 3, H, W).
        Returns:
            (B, T, P, D) with P = (64 / patch)^2 tokens per frame.
        """
        b, t = frames.shape[:2]
        clip = frames.reshape(b * t, 1, *frames.shape[2:]).expand(-1, 2, -1, -1, -1)  # (B*T, 2, 3, H, W)
        return self.forward(clip).reshape(b, t, -1, self.dim)  # (B*T, P, D) -> (B, T, P, D)
