"""The world model: a conv codec (frame <-> latent), a proprioceptive head (latent -> agent (x, y)) and an
action-conditioned predictor (latent, action word -> next latent). Its latents are the *world tokens*.

Shrunk from chapter 3's codec and predictor (3.action-conditioning/models/codec.py and rollout.py),
copied so that this chapter stands alone; the proprioceptive head follows the curriculum's calibration
note (with reconstruction alone a small agent disk is easily lost from the latent). In TheWorld this is
the Cosmos VAE (and, rolled forward, a Cosmos world model); here it is ~0.3 M parameters.

Shape key: B batch, S world steps, Z latent width, A number of action words (5), H/W frame side (32).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .vit import check_frames


class WorldModel(nn.Module):
    """encode: (B, 3, 32, 32) -> (B, Z); decode: (B, Z) -> (B, 3, 32, 32); proprio: (B, Z) -> (B, 2);
    step: (B, Z), action ids (B,) -> (B, Z); rollout: encode then step once per action.

    Args:
        latent: Z. actions: A. width: channels of the conv trunk.
    """

    def __init__(self, latent: int = 64, actions: int = 5, width: int = 32, size: int = 32):
        super().__init__()
        self.latent, self.n_actions, self.size = latent, actions, size
        self.enc = nn.Sequential(  # 32 -> 16 -> 8 -> 4
            nn.Conv2d(3, width, 4, 2, 1),
            nn.GELU(),
            nn.Conv2d(width, 2 * width, 4, 2, 1),
            nn.GELU(),
            nn.Conv2d(2 * width, 2 * width, 4, 2, 1),
            nn.GELU(),
            nn.Flatten(),
            nn.Linear(2 * width * 16, latent),
        )
        self.dec_in = nn.Linear(latent, 2 * width * 16)
        self.dec = nn.Sequential(  # 4 -> 8 -> 16 -> 32
            nn.ConvTranspose2d(2 * width, 2 * width, 4, 2, 1),
            nn.GELU(),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1),
            nn.GELU(),
            nn.ConvTranspose2d(width, 3, 4, 2, 1),
        )
        self.head = nn.Sequential(nn.Linear(latent, 128), nn.GELU(), nn.Linear(128, 2))
        self.dyn = nn.Sequential(
            nn.Linear(latent + actions, 256),
            nn.GELU(),
            nn.Linear(256, 256),
            nn.GELU(),
            nn.Linear(256, latent),
        )

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (B, 3, H, W) in [0, 1] -> latents (B, Z)."""
        check_frames(frames, self.size)
        return self.enc(frames)  # black background: only the agent and the walls excite the filters

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """latents (B, Z) -> frames (B, 3, H, W) (unclamped; clamp to [0, 1] to look at them)."""
        return self.dec(self.dec_in(z).view(len(z), -1, 4, 4))

    def proprio(self, z: torch.Tensor) -> torch.Tensor:
        """latents (..., Z) -> the agent's (x, y) in arena units (..., 2)."""
        return self.head(z)

    def step(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """One action word: z (B, Z), action (B,) int64 -> next latent (B, Z) (a residual update)."""
        return z + self.dyn(torch.cat([z, F.one_hot(action, self.n_actions).to(z.dtype)], -1))

    def rollout(self, frames: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Encode the frame, then imagine ``S`` action words open loop.

        Args: frames (B, 3, H, W); actions (B, S) int64 (S may be 0).
        Returns: latents (B, S + 1, Z): the present, then one per imagined step.
        """
        if actions.ndim != 2 or actions.shape[0] != frames.shape[0]:
            raise ValueError(f"actions must be (B, S) with B = {frames.shape[0]}, got {tuple(actions.shape)}")
        if actions.numel() and (actions.min() < 0 or actions.max() >= self.n_actions):
            raise ValueError(f"action ids must be in [0, {self.n_actions})")
        zs = [self.encode(frames)]
        for t in range(actions.shape[1]):
            zs.append(self.step(zs[-1], actions[:, t]))
        return torch.stack(zs, 1)


def world_model_loss(
    wm: WorldModel,
    frames: torch.Tensor,
    actions: torch.Tensor,
    proprio: torch.Tensor,
    fg_weight: float = 20.0,
    latent_weight: float = 1.0,
) -> tuple[torch.Tensor, dict]:
    """Train the codec, the proprioceptive head and the predictor together on short trajectories.

    Args:
        frames: (B, T, 3, H, W) in [0, 1]; actions: (B, T-1) int64; proprio: (B, T, 2) true (x, y).
        fg_weight: pixels that differ from the background (the agent) count this much more.
        latent_weight: weight of (1); a high weight keeps imagined latents in the space of real encodings,
        which is what lets a reader trained on encodings of recorded frames read the imagination.
    Returns:
        the total loss and its parts. Every imagined latent must (1) match the encoding of the true next
        frame, (2) give the true position through the head and (3) decode to the true frame: that keeps
        open-loop rollouts on the manifold of real latents.
    """
    B, T = actions.shape[0], actions.shape[1] + 1
    flat = frames.flatten(0, 1)  # (B*T, 3, H, W)
    z = wm.encode(flat).view(B, T, -1)  # (B, T, Z)
    imagined = wm.rollout(frames[:, 0], actions)  # (B, T, Z), imagined[:, 0] = z[:, 0]
    weight = 1 + (fg_weight - 1) * (flat.amax(1, keepdim=True) > 0.9).float()  # the orange agent is bright
    recon = (weight * (wm.decode(z.flatten(0, 1)) - flat) ** 2).mean()
    recon_imagined = (weight * (wm.decode(imagined.flatten(0, 1)) - flat) ** 2).mean()
    pos = 100 * F.mse_loss(wm.proprio(z), proprio)  # x100: positions are in [0, 1], we want ~0.01 precision
    pos_imagined = 100 * F.mse_loss(wm.proprio(imagined[:, 1:]), proprio[:, 1:])
    latent = F.mse_loss(imagined[:, 1:], z[:, 1:].detach())
    parts = {"recon": recon, "recon_imagined": recon_imagined, "pos": pos, "pos_imagined": pos_imagined}
    parts["latent"] = latent
    return recon + recon_imagined + pos + pos_imagined + latent_weight * latent, {
        k: v.item() for k, v in parts.items()
    }
