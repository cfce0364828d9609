"""The pay-off's world model: a learned dynamics model of the robot's own state, conditioned on an action.

Shape key: B batch, S rollout steps, A action dims (2: the point mass's push (dx, dy)).

The state is the point mass's proprioception, its (x, y) in pixels (``info["pos"]`` of the simulator, the
one thing a robot knows about itself). A small MLP learns the move: (position, action) -> change of
position. Nothing about the world is written in: not the step size (0.05 of the arena per unit push),
not where the walls are; both are learned from the frame pairs and whatever action labels it is given.

Why a state model and not a pixel model: the pay-off asks how much the *labels* cost, so the model's own
error must be small next to the labels' effect. The pixel models we tried made larger errors than the
labels' effect after a few dreamt steps (NOTES.md); a state model's error comes mostly from the labels.
"""

from __future__ import annotations

import torch
from torch import nn

SIZE = 64.0  # frame side in pixels: positions are scaled to [-1, 1] by it


class StateDynamics(nn.Module):
    """(position (B, 2) px, action (B, A)) -> next position (B, 2) px, as position + a learned change.

    Args:
        action_dim: A, the width of the action (0: a model told no action at all).
        width: hidden units of the two hidden layers.
    """

    def __init__(self, action_dim: int = 2, width: int = 128):
        super().__init__()
        self.action_dim = action_dim
        self.net = nn.Sequential(
            nn.Linear(2 + action_dim, width),
            nn.SiLU(),
            nn.Linear(width, width),
            nn.SiLU(),
            nn.Linear(width, 2),
        )

    def forward(self, pos: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """pos: (B, 2) float px, action: (B, A) float -> (B, 2) predicted next position in px."""
        a = self.action_dim
        if not isinstance(pos, torch.Tensor) or pos.dim() != 2 or pos.shape[1] != 2:
            got = tuple(pos.shape) if isinstance(pos, torch.Tensor) else type(pos).__name__
            raise ValueError(f"position must have shape (B, 2) in pixels, got {got}")
        if not isinstance(action, torch.Tensor) or tuple(action.shape) != (pos.shape[0], a):
            got = tuple(action.shape) if isinstance(action, torch.Tensor) else type(action).__name__
            raise ValueError(f"action must have shape (B, A) = ({pos.shape[0]}, {a}), got {got}")
        x = torch.cat([pos.float() / SIZE * 2 - 1, action.float()], dim=1)  # (B, 2 + A)
        return pos + self.net(x)  # the model predicts the move, not the position


@torch.no_grad()
def dream(model: StateDynamics, start: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Open loop: start (B, 2) px and actions (B, S, A) -> predicted positions (B, S, 2), each fed back."""
    pos, out = start, []
    for s in range(actions.shape[1]):
        pos = model(pos, actions[:, s])
        out.append(pos)
    return torch.stack(out, dim=1)
