"""The world model the planners use: a conv encoder, a proprioceptive head and a latent action predictor.

Adapted from chapter 3 (3.action-conditioning/models/codec.py: strided convolutions down) and chapter 5
(5.dino-predictor/models/predictor.py: predict the next latent from the latent, the action and the
proprioception), shrunk to what planning needs and copied so this chapter stands alone:

    frame_t --encoder--> z_t --predictor(z_t, a_t)--> z_t+1 --predictor(., a_t+1)--> z_t+2 ...
                          |                             |
                       position head (x, y)          position head (x, y)

- The encoder sees the frame plus two coordinate channels (CoordConv), so "where is the disk" is an
  easy, linear question for it.
- The position head is trained jointly (predict the agent's (x, y) from the latent). Without it, a small
  disk on a big background is the last thing a reconstruction loss bothers to encode.
- The predictor is a residual MLP: z_t+1 = z_t + f(z_t, a_t). It is trained on open-loop rollouts from
  every frame of a window, the way a planner uses it, against the encoder's latents of the true future
  frames (stop-gradient), plus a variance floor per latent dimension (VICReg's) so the latent cannot
  collapse to a constant.
- The distance head reads off two latents how far apart their places are *going round the walls*: it is
  trained on the shortest chains of recorded transitions between them (experience_graph.py), on
  detached latents, so it learns from the world model's latents without bending them.

Shape key: B batch, T time, H horizon, D latent dim, A = 2 action dims, P = 2 position dims.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

POS_WEIGHT = 100.0  # the position terms' weight in the training loss (see WorldModel.loss)


def check_frames(x: torch.Tensor, size: int = 64) -> None:
    """Raise a ValueError naming the expected shape unless x is (B, 3, size, size)."""
    if x.dim() != 4 or x.shape[1] != 3 or x.shape[-2:] != (size, size):
        raise ValueError(f"frames must be (B, 3, {size}, {size}) floats in [0, 1], got {tuple(x.shape)}")


class Encoder(nn.Module):
    """Frames (B, 3, 64, 64) in [0, 1] -> latents (B, D)."""

    def __init__(self, latent_dim: int = 64, ch: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.AvgPool2d(2),  # (B, 5, 32, 32): the disk is still 3 px wide; 4x less work below
            nn.Conv2d(5, ch, 4, stride=2, padding=1),  # (B, ch, 16, 16); 3 colours + 2 coordinates in
            nn.SiLU(),
            nn.Conv2d(ch, 2 * ch, 4, stride=2, padding=1),  # (B, 2ch, 8, 8)
            nn.SiLU(),
            nn.Conv2d(2 * ch, 2 * ch, 4, stride=2, padding=1),  # (B, 2ch, 4, 4)
            nn.SiLU(),
            nn.Flatten(),  # (B, 2ch * 16)
            nn.Linear(2 * ch * 16, latent_dim),  # (B, D)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, 64, 64) -> (B, D)."""
        check_frames(x)
        b, _, h, w = x.shape
        ys = torch.linspace(-1, 1, h, device=x.device)[None, None, :, None].expand(b, 1, h, w)
        xs = torch.linspace(-1, 1, w, device=x.device)[None, None, None, :].expand(b, 1, h, w)
        return self.net(torch.cat([x * 2 - 1, xs, ys], dim=1))  # CoordConv: (B, 5, 64, 64) in


def mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    """Two hidden SiLU layers."""
    return nn.Sequential(
        nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, n_out)
    )


class WorldModel(nn.Module):
    """Encoder + position head + action-conditioned latent predictor (see the module docstring)."""

    def __init__(self, latent_dim: int = 64, ch: int = 32, hidden: int = 256, action_dim: int = 2, pos_dim=2):
        super().__init__()
        self.latent_dim, self.action_dim = latent_dim, action_dim
        self.encoder = Encoder(latent_dim, ch)
        self.position_head = mlp(latent_dim, hidden // 2, pos_dim)  # z -> (x, y) in arena units (P = 2;
        # PushT: P = 6, the agent's and the block's positions and the block's angle, pusht/data.py)
        self.predictor = mlp(latent_dim + action_dim, hidden, latent_dim)
        self.distance_head = mlp(2 * latent_dim, hidden, 1)  # (z, z_goal) -> how far, round the walls

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """frames: (B, 3, 64, 64) -> (B, D)."""
        return self.encoder(frames)

    def position(self, z: torch.Tensor) -> torch.Tensor:
        """z: (..., D) -> (..., P) the agent's predicted (x, y)."""
        return self.position_head(z)

    def distance(self, z: torch.Tensor, z_goal: torch.Tensor) -> torch.Tensor:
        """How far (arena units, round the walls) from latent z to latent z_goal.

        Args:
            z: (..., D); z_goal: (..., D), the same leading dims (or broadcastable to them).
        Returns:
            (...,) non-negative distances (softplus keeps them so).
        """
        z, z_goal = torch.broadcast_tensors(z, z_goal)
        return F.softplus(self.distance_head(torch.cat([z, z_goal], dim=-1))).squeeze(-1)

    def step(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """One imagined step: z (..., D), a (..., A) -> (..., D)."""
        return z + self.predictor(torch.cat([z, a], dim=-1))

    def rollout(self, z0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Imagine an action sequence open-loop.

        Args:
            z0: (..., D) the starting latent; actions: (..., H, A) (same leading dims).
        Returns:
            (..., H, D) the latent after each action.
        """
        if actions.shape[-1] != self.action_dim or actions.shape[:-2] != z0.shape[:-1]:
            raise ValueError(f"actions must be (..., H, {self.action_dim}) matching z0 {tuple(z0.shape)}")
        zs, z = [], z0
        for h in range(actions.shape[-2]):
            z = self.step(z, actions[..., h, :])
            zs.append(z)
        return torch.stack(zs, dim=-2)

    def loss(self, frames, actions, proprio, pairs=None, pos_weight=POS_WEIGHT, dist_weight=1.0):
        """The training loss on a batch of trajectory windows.

        The predictor is rolled out open-loop from *every* frame of the window at once (the frames are
        encoded once, and the MLP is cheap next to the encoder): from frame s it imagines frames s+1 ...
        T-1, so one window of T frames gives T(T-1)/2 imagined latents to learn from instead of T-1.

        Args:
            frames: (B, T, 3, 64, 64) in [0, 1]; actions: (B, T-1, A); proprio: (B, T, P) true (x, y).
            pairs: optional (i_from (M,), i_to (M,), target (M,)) for the distance head: indices into the
                B*T frames of the batch (flattened) and the distance between their places.
        Returns:
            (total loss, {name: float} its parts).
        """
        b, t = frames.shape[:2]
        z = self.encode(frames.flatten(0, 1)).view(b, t, -1)  # (B, T, D)
        cur, preds, targets, pos = z[:, :-1], [], [], []  # cur[:, s]: imagined latent, started at frame s
        for k in range(1, t):  # k steps after each start: starts s = 0 .. T-1-k still have a target
            n = t - k
            cur = self.step(cur[:, :n], actions[:, k - 1 : k - 1 + n])  # (B, n, D): frames s + k
            preds.append(cur)
            targets.append(z[:, k:].detach())  # stop-gradient on the targets
            pos.append(proprio[:, k:])
        pred, target, p_true = (torch.cat(x, dim=1) for x in (preds, targets, pos))  # (B, T(T-1)/2, .)
        latent = F.mse_loss(pred, target)
        pos_enc = F.mse_loss(self.position(z), proprio)  # the head reads the encoder's latent...
        pos_pred = F.mse_loss(self.position(pred), p_true)  # ...and the imagined ones
        std = z.flatten(0, 1).std(dim=0)  # (D,) spread of each latent dimension over the batch
        variance = F.relu(1.0 - std).mean()  # VICReg's floor: no dimension may collapse
        total = latent + pos_weight * (pos_enc + pos_pred) + variance
        parts = {"latent": latent.item(), "pos_enc": pos_enc.item(), "pos_pred": pos_pred.item()}
        if pairs is not None:  # detached latents: the distance head learns from them, never bends them
            flat = z.detach().flatten(0, 1)  # (B*T, D)
            i_from, i_to, target = pairs
            dist = F.mse_loss(self.distance(flat[i_from], flat[i_to]), target)
            total, parts["distance"] = total + dist_weight * dist, dist.item()
        return total, {**parts, "variance": variance.item()}
