"""The video encoder: tubelet embedding, 3-D sin-cos positions, a ViT that can skip masked tokens.

A clip (B, T, 3, 64, 64) is cut into tubelets of 2 frames x 8 x 8 pixels (a 3-D convolution with
stride = kernel), giving a grid of (T/2, 8, 8) tokens. ``keep`` selects the tokens the encoder may see:
masked tokens are dropped *before* the transformer, so the context encoder never sees them.

Shape key: B batch, T frames, N = (T/2)*8*8 tokens, K kept tokens, D feature dim.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .vit import Transformer, sincos_3d

TUBELET = (2, 8, 8)  # frames, rows, columns per token
# Our frames are mostly black: standardise the pixels so that the content, not the constant background
# and the position embeddings, dominates the first layer (measured over the training clips).
PIXEL_MEAN, PIXEL_STD = 0.08, 0.2


class VideoEncoder(nn.Module):
    """Tubelet embedding + sin-cos positions + a ViT.

    Args:
        dim: D. depth, heads: transformer size. size: frame side (64).
    """

    def __init__(self, dim: int = 96, depth: int = 4, heads: int = 4, size: int = 64):
        super().__init__()
        self.dim, self.size = dim, size
        self.embed = nn.Conv3d(3, dim, kernel_size=TUBELET, stride=TUBELET)  # one token per tubelet
        self.transformer = Transformer(dim, depth, heads)

    def grid(self, frames: int) -> tuple[int, int, int]:
        """The token grid (t, h, w) of a clip of ``frames`` frames."""
        return frames // TUBELET[0], self.size // TUBELET[1], self.size // TUBELET[2]

    def tokens(self, video: torch.Tensor) -> torch.Tensor:
        """Embed a clip: video (B, T, 3, H, W) floats in [0, 1] -> tokens with positions (B, N, D)."""
        if video.dim() != 5 or video.shape[2:] != (3, self.size, self.size) or video.shape[1] % 2:
            raise ValueError(
                f"expected a clip (B, T, 3, {self.size}, {self.size}) with an even T, "
                f"got {tuple(video.shape)}"
            )
        x = self.embed((video.transpose(1, 2) - PIXEL_MEAN) / PIXEL_STD)  # (B, D, T/2, 8, 8): channels first
        x = x.flatten(2).transpose(1, 2)  # (B, N, D) in time-major order
        return x + sincos_3d(*self.grid(video.shape[1]), self.dim).to(x)

    def forward(self, video: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Encode a clip, optionally only the tokens ``keep`` (B, K) long indices -> (B, K or N, D)."""
        x = self.tokens(video)  # (B, N, D)
        if keep is not None:  # drop the masked tokens: the transformer never sees them
            x = torch.gather(x, 1, keep[..., None].expand(-1, -1, self.dim))  # (B, K, D)
        return self.transformer(x)

    def encode_frames(self, frames: torch.Tensor, pool: int = 2) -> torch.Tensor:
        """Per-frame tokens for V-JEPA 2-AC: each frame is repeated to a 2-frame tubelet and encoded alone.

        Args:
            frames: (B, T, 3, H, W). pool: average-pool the 8x8 token grid by this factor.
        Returns:
            (B, T, P, D) with P = (8 / pool)^2 tokens per frame.
        """
        b, t = frames.shape[:2]
        clip = frames.reshape(b * t, 1, *frames.shape[2:]).expand(-1, 2, -1, -1, -1)  # (B*T, 2, 3, H, W)
        z = self.forward(clip)  # (B*T, 64, D)
        side = self.size // TUBELET[1]
        z = z.transpose(1, 2).reshape(b * t, self.dim, side, side)
        z = nn.functional.avg_pool2d(z, pool)  # (B*T, D, 8/pool, 8/pool)
        return z.flatten(2).transpose(1, 2).reshape(b, t, -1, self.dim)
