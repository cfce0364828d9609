"""The small convolutional trunk every reader of frames in this chapter shares, and frame checks.

Shape key (all files of this chapter): B batch, C channels, H/W frame height/width (64), F features,
K latent-action codes, D latent-action dims.

The inverse dynamics model, the overlay reader and the latent action model's encoder all ask "what is in
this frame (or this pair of frames)?" and answer with one vector. The trunk: three stride-2 3x3
convolutions (64 -> 32 -> 16 -> 8 px), each followed by group normalisation, a 3x3 convolution, then the
mean and the max over the 8x8 grid. Without the normalisation the IDM sat at chance for ~90 steps on 550
labelled pairs and never left it in 250 steps on 110 pairs; with it, 110 pairs gave 100 % held-out
accuracy within 150 steps (measured).
Its receptive field is 31 px, enough to see a 2-px move or the whole 13-px overlay. Padding is circular:
the dot lives on a torus, so a dot leaving on the right is next to the left edge, and the network sees it
so. Pooling over positions makes the answer the same wherever the move happens, which is exactly the
invariance an inverse dynamics model needs.
"""

from __future__ import annotations

import torch
from torch import nn

FRAME_SHAPE = (3, 64, 64)  # (C, H, W)


def check_frames(x, name: str = "frames") -> None:
    """Raise a ValueError naming the expected input unless ``x`` is a float tensor (B, 3, 64, 64)."""
    if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x):
        kind = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a float tensor of shape (B, 3, 64, 64) in [0, 1], got {kind}")
    if x.dim() != 4 or tuple(x.shape[1:]) != FRAME_SHAPE:
        raise ValueError(f"{name} must have shape (B, 3, 64, 64), got {tuple(x.shape)}")


def check_pair(x0, x1) -> None:
    """Both frames of a pair are valid frames and have the same batch size."""
    check_frames(x0, "frame_t")
    check_frames(x1, "frame_t+1")
    if x0.shape[0] != x1.shape[0]:
        raise ValueError(f"frame_t and frame_t+1 batch sizes differ: {x0.shape[0]} vs {x1.shape[0]}")


def pair_input(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) twice -> (B, 9, H, W): both frames and their difference, the signal of a move."""
    return torch.cat([x0, x1, x1 - x0], dim=1)


def conv(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    """A 3x3 convolution with circular padding (the torus has no edges)."""
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, padding_mode="circular")


class ConvTrunk(nn.Module):
    """Frames stacked as channels (B, C, 64, 64) -> a feature vector (B, F=2*width*2).

    Args:
        in_ch: input channels (9 for a frame pair, 3 for one frame).
        width: channels of the first layer; later layers have 2x and 2x.
    """

    def __init__(self, in_ch: int, width: int = 16):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            conv(in_ch, w, 2), nn.GroupNorm(4, w), nn.SiLU(),  # (B, w, 32, 32)
            conv(w, 2 * w, 2), nn.GroupNorm(4, 2 * w), nn.SiLU(),  # (B, 2w, 16, 16)
            conv(2 * w, 2 * w, 2), nn.GroupNorm(4, 2 * w), nn.SiLU(),  # (B, 2w, 8, 8)
            conv(2 * w, 2 * w), nn.SiLU(),  # (B, 2w, 8, 8)
        )  # fmt: skip
        self.out_dim = 4 * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, 64, 64) -> (B, F): mean and max of the last feature map over all positions."""
        h = self.net(x * 2 - 1)  # centre the pixels around 0
        return torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
