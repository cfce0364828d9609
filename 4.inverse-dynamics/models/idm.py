"""The inverse dynamics model (IDM) and the overlay reader: two small classifiers of frames.

Shape key: see trunk.py. A action dims (2 for the point mass).

Inverse dynamics (VPT, Baker et al. 2022): look at frame_t and frame_t+1 and say which action led from
one to the other. It is an easier problem than forward dynamics (predicting frame_t+1): the answer is 5
classes or 2 numbers, not 12,288 pixels, and it may look at the future. So a few labelled pairs train it
well, and it can then label the large unlabelled rest: the VPT recipe.

- discrete (the dot): 5 logits, trained with cross-entropy;
- continuous (the point mass): (dx, dy) through tanh (actions live in [-1, 1]), trained with MSE.

The overlay reader looks at one frame and reads which button the on-screen controller shows.
"""

from __future__ import annotations

import torch
from torch import nn

from .trunk import ConvTrunk, check_frames, check_pair, pair_input


class InverseDynamics(nn.Module):
    """(frame_t, frame_t+1) -> the action between them.

    Args:
        kind: "discrete" (``n_actions`` logits) or "continuous" (``action_dim`` values in [-1, 1]).
        width: the trunk's width.
    """

    def __init__(self, kind: str = "discrete", n_actions: int = 5, action_dim: int = 2, width: int = 16):
        super().__init__()
        if kind not in ("discrete", "continuous"):
            raise ValueError(f"kind must be 'discrete' or 'continuous', got {kind!r}")
        self.kind = kind
        self.trunk = ConvTrunk(9, width)
        out = n_actions if kind == "discrete" else action_dim
        self.head = nn.Sequential(nn.Linear(self.trunk.out_dim, 64), nn.SiLU(), nn.Linear(64, out))

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """x0, x1: (B, 3, 64, 64) in [0, 1] -> logits (B, n_actions) or actions (B, A) in [-1, 1]."""
        check_pair(x0, x1)
        y = self.head(self.trunk(pair_input(x0, x1)))
        return y if self.kind == "discrete" else torch.tanh(y)

    @torch.no_grad()
    def predict(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """The model's label: (B,) int64 action (discrete) or (B, A) float (continuous)."""
        y = self(x0, x1)
        return y.argmax(-1) if self.kind == "discrete" else y


class OverlayReader(nn.Module):
    """One frame (B, 3, 64, 64) -> logits (B, n_actions) of the button lit on the controller overlay."""

    def __init__(self, n_actions: int = 5, width: int = 16):
        super().__init__()
        self.trunk = ConvTrunk(3, width)
        self.head = nn.Linear(self.trunk.out_dim, n_actions)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, 64, 64) -> (B, n_actions) logits."""
        check_frames(x)
        return self.head(self.trunk(x))
