"""Turning an action into a vector the transformer can use, and refusing actions that make no sense.

Shape key: B batch, T time (frames), A action dims (2 for the point mass), E embedding width.

Two kinds of action:
- discrete (the toroidal dot: 0 stay, 1 left, 2 right, 3 up, 4 down): an embedding table, one learned
  E-vector per action. There is no order between "left" and "up", so a lookup is the honest encoding.
- continuous (the point mass: (dx, dy) in [-1, 1]^2): a small MLP, after normalising to [-1, 1], so
  nearby actions get nearby embeddings and the model can interpolate between actions it has seen.
"""

from __future__ import annotations

import torch
from torch import nn


class ActionEncoder(nn.Module):
    """Actions (B, T) int64 or (B, T, A) float -> embeddings (B, T, E).

    Args:
        kind: "discrete" or "continuous".
        dim: embedding width E.
        n_actions: number of discrete actions (discrete only).
        action_dim: A, the number of action components (continuous only).
        low, high: the valid range of each continuous component; it is mapped to [-1, 1].
    """

    def __init__(self, kind: str, dim: int, n_actions: int = 5, action_dim: int = 2, low=-1.0, high=1.0):
        super().__init__()
        if kind not in ("discrete", "continuous"):
            raise ValueError(f"action kind must be 'discrete' or 'continuous', got {kind!r}")
        self.kind, self.n_actions, self.action_dim, self.low, self.high = (
            kind,
            n_actions,
            action_dim,
            low,
            high,
        )
        if kind == "discrete":
            self.net = nn.Embedding(n_actions, dim)
        else:
            self.net = nn.Sequential(nn.Linear(action_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def expected(self, b, t) -> str:
        """A human description of the valid input, used in the error messages."""
        if self.kind == "discrete":
            return f"an integer tensor of shape (B, T) = ({b}, {t}) with values in [0, {self.n_actions})"
        a = self.action_dim
        return f"a float tensor of shape (B, T, {a}) = ({b}, {t}, {a}) in [{self.low:g}, {self.high:g}]"

    def check(self, actions, b: int, t: int) -> None:
        """Raise a ValueError naming the expected shape and range unless ``actions`` fits (B, T)."""
        want = self.expected(b, t)
        if not isinstance(actions, torch.Tensor):
            raise ValueError(f"actions must be {want}, got {type(actions).__name__}")
        if self.kind == "discrete":
            if (
                actions.dtype.is_floating_point
                or actions.dtype == torch.bool
                or tuple(actions.shape) != (b, t)
            ):
                raise ValueError(f"actions must be {want}, got {actions.dtype} {tuple(actions.shape)}")
            if actions.numel() and (actions.min() < 0 or actions.max() >= self.n_actions):
                bad = actions.min().item() if actions.min() < 0 else actions.max().item()
                raise ValueError(f"actions must be {want}; found out-of-range action {bad}")
        else:
            if not actions.dtype.is_floating_point or tuple(actions.shape) != (b, t, self.action_dim):
                raise ValueError(f"actions must be {want}, got {actions.dtype} {tuple(actions.shape)}")
            if not torch.isfinite(actions).all():
                raise ValueError(f"actions must be {want}; found NaN or inf")
            eps = 1e-5  # float noise from an upstream computation is not an error
            if actions.numel() and (actions.min() < self.low - eps or actions.max() > self.high + eps):
                raise ValueError(
                    f"actions must be {want}; found values in [{actions.min():.3g}, {actions.max():.3g}]"
                )

    def forward(self, actions: torch.Tensor) -> torch.Tensor:
        """(B, T) int64 or (B, T, A) float -> (B, T, E). Call ``check`` first for a clear error."""
        if self.kind == "discrete":
            return self.net(actions.long())
        a = 2 * (actions.float() - self.low) / (self.high - self.low) - 1  # normalise to [-1, 1]
        return self.net(a)
