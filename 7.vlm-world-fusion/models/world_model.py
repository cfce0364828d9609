"""The world model: a small convolutional VAE whose latent is a 4x4 grid of C-channel vectors, and an
action-conditioned predictor that steps that grid forward. Its latents are the *world tokens*.

Like TheWorld's Cosmos VAE, the encoder gives a distribution per grid position and the fusion reads its
*mean* (TheWorld takes ``latent_dist`` of the Cosmos VAE, 16 channels per position); like the world
models of chapters 2 and 3, the latent is learned only by predicting frames: every frame must decode from
its own latent, and every *imagined* latent (encode the first frame, step it under the recorded action
words) must decode to the true next frame and sit on the encoding of that frame. No position label is
used anywhere: the world model knows where the agent is only because it must redraw it.

The codec is shrunk from chapter 3's (3.action-conditioning/models/codec.py), with chapter 1's
foreground-weighted reconstruction (a 3-px agent on 1,024 pixels is easily lost from a latent trained
with plain MSE), copied so that this chapter stands alone.

Shape key: B batch, T frames, S world steps, C latent channels (16), G grid side (4), N = G*G grid
positions, A number of action words (5), H/W frame side (32).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .vit import check_frames


class WorldModel(nn.Module):
    """encode: (B, 3, 32, 32) -> latent means (B, N, C); decode: (B, N, C) -> (B, 3, 32, 32);
    step: (B, N, C), action ids (B,) -> (B, N, C); rollout: encode then step once per action word.

    Args:
        channels: C, latent channels per grid position. actions: A. width: channels of the conv trunk.
        size: frame side (32; the grid side is size / 8).
    """

    def __init__(self, channels: int = 16, actions: int = 5, width: int = 32, size: int = 32):
        super().__init__()
        self.channels, self.n_actions, self.size, self.grid = channels, actions, size, size // 8
        self.enc = nn.Sequential(  # 32 -> 16 -> 8 -> 4
            nn.Conv2d(3, width, 4, 2, 1),
            nn.GELU(),
            nn.Conv2d(width, 2 * width, 4, 2, 1),
            nn.GELU(),
            nn.Conv2d(2 * width, 2 * width, 4, 2, 1),
            nn.GELU(),
            nn.Conv2d(2 * width, 2 * channels, 1),  # mean and log-variance per grid position
        )
        self.dec = nn.Sequential(  # 4 -> 8 -> 16 -> 32
            nn.Conv2d(channels, 2 * width, 1),
            nn.GELU(),
            nn.ConvTranspose2d(2 * width, 2 * width, 4, 2, 1),
            nn.GELU(),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1),
            nn.GELU(),
            nn.ConvTranspose2d(width, 3, 4, 2, 1),
        )
        n = self.grid**2 * channels  # the whole grid, flattened: walls stop moves far from the agent's cell
        self.dyn = nn.Sequential(
            nn.Linear(n + actions, 512), nn.GELU(), nn.Linear(512, 512), nn.GELU(), nn.Linear(512, n)
        )

    @property
    def tokens_per_step(self) -> int:
        """N, the grid positions of one step (16): each becomes one world token."""
        return self.grid**2

    def distribution(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """frames (B, 3, H, W) in [0, 1] -> (mean, log-variance), each (B, N, C), row-major over the grid."""
        check_frames(frames, self.size)
        stats = self.enc(frames).flatten(2).transpose(1, 2)  # (B, N, 2C)
        return stats.chunk(2, -1)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (B, 3, H, W) -> the latent *mean* (B, N, C), what TheWorld reads from its VAE."""
        return self.distribution(frames)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """latents (B, N, C) -> frames (B, 3, H, W) (unclamped; clamp to [0, 1] to look at them)."""
        grid = z.transpose(1, 2).reshape(len(z), self.channels, self.grid, self.grid)  # (B, C, G, G)
        return self.dec(grid)

    def step(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """One action word: z (B, N, C), action (B,) int64 -> next latent grid (B, N, C) (residual)."""
        x = torch.cat([z.flatten(1), F.one_hot(action, self.n_actions).to(z.dtype)], -1)  # (B, N*C + A)
        return z + self.dyn(x).view_as(z)

    def rollout(self, frames: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Encode the frame, then imagine ``S`` action words open loop.

        Args: frames (B, 3, H, W); actions (B, S) int64 (S may be 0).
        Returns: latents (B, S + 1, N, C): the present grid, then one per imagined step.
        """
        if actions.ndim != 2 or actions.shape[0] != frames.shape[0]:
            raise ValueError(f"actions must be (B, S) with B = {frames.shape[0]}, got {tuple(actions.shape)}")
        if actions.numel() and (actions.min() < 0 or actions.max() >= self.n_actions):
            raise ValueError(f"action ids must be in [0, {self.n_actions})")
        zs = [self.encode(frames)]
        for t in range(actions.shape[1]):
            zs.append(self.step(zs[-1], actions[:, t]))
        return torch.stack(zs, 1)


def agent_position(frames: torch.Tensor) -> torch.Tensor:
    """Where the orange agent is in (decoded) frames: (B, 3, H, W) -> (B, 2) (x, y) in arena units.

    The centroid of "redder than blue" (the agent is (255, 140, 20), the walls grey, the floor black), so
    the world model's imagination can be scored without any position head."""
    w = (frames[:, 0] - frames[:, 2]).clamp(min=0) ** 2  # (B, H, W): large only on the agent
    H, W = w.shape[-2:]
    ys = (torch.arange(H, device=w.device, dtype=w.dtype) + 0.5) / H
    xs = (torch.arange(W, device=w.device, dtype=w.dtype) + 0.5) / W
    total = w.sum((1, 2)).clamp(min=1e-8)  # (B,)
    return torch.stack([(w.sum(1) * xs).sum(-1) / total, (w.sum(2) * ys).sum(-1) / total], -1)


def world_model_loss(
    wm: WorldModel,
    frames: torch.Tensor,
    actions: torch.Tensor,
    fg_weight: float = 20.0,
    beta: float = 1e-3,
    latent_weight: float = 1.0,
) -> tuple[torch.Tensor, dict]:
    """The VAE and next-frame prediction loss on short trajectories.

    Args:
        frames: (B, T, 3, H, W) in [0, 1]; actions: (B, T-1) int64.
        fg_weight: pixels brighter than the floor and the walls (the agent) count this much more.
        beta: weight of the KL term, per latent number (small: the latent must keep the 3-px agent).
        latent_weight: weight of "an imagined latent sits on the mean encoding of the true frame".
    Returns:
        the total loss and its parts: (1) each frame decodes from a sample of its own latent (the VAE),
        (2) each imagined latent decodes to the true next frame (the prediction), (3) it matches the
        encoding of that frame (so the reader sees imagined and encoded grids alike), (4) the KL.
    """
    B, T = actions.shape[0], actions.shape[1] + 1
    flat = frames.flatten(0, 1)  # (B*T, 3, H, W)
    mean, logvar = wm.distribution(flat)  # (B*T, N, C) each
    sample = mean + torch.randn_like(mean) * (0.5 * logvar).exp()  # the reparameterisation
    kl = 0.5 * (mean**2 + logvar.exp() - 1 - logvar).mean()  # per latent number
    imagined = wm.rollout(frames[:, 0], actions)  # (B, T, N, C), imagined[:, 0] = mean of frame 0
    weight = 1 + (fg_weight - 1) * (flat.amax(1, keepdim=True) > 0.9).float()  # the orange agent is bright
    recon = (weight * (wm.decode(sample) - flat) ** 2).mean()
    future = frames[:, 1:].flatten(0, 1)  # (B*(T-1), 3, H, W)
    predicted = (weight.view(B, T, 1, *flat.shape[-2:])[:, 1:].flatten(0, 1)) * (
        wm.decode(imagined[:, 1:].flatten(0, 1)) - future
    ) ** 2
    predict = predicted.mean()
    latent = F.mse_loss(imagined[:, 1:], mean.view(B, T, *mean.shape[1:])[:, 1:].detach())
    parts = {"recon": recon, "predict": predict, "latent": latent, "kl": kl}
    total = recon + predict + latent_weight * latent + beta * kl
    return total, {k: v.item() for k, v in parts.items()}
