"""The V-JEPA 2-AC predictor: what will the frozen features be after this action?

Each frame t becomes a block of tokens: [action a_t, proprioception s_t, its P patch features z_t].
A block-causal mask lets every token of frame t attend to all tokens of frames 0..t and none later,
so one forward pass over T frames gives T next-frame predictions (teacher forcing), and the same model
rolls out step by step at planning time. The patch tokens of frame t predict z_{t+1} (as z_t plus a
change), the proprioception token predicts s_{t+1}.

Shape key: B batch, T frames, P patch tokens per frame, D encoder dim, E predictor dim, A action dims (2),
S proprioception dims (2), H rollout horizon.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .vit import Transformer, sincos_1d


def block_causal(t: int, per_frame: int, device=None) -> torch.Tensor:
    """(t*per_frame, t*per_frame) bool: token i may attend to token j when frame(j) <= frame(i)."""
    frame = torch.arange(t * per_frame, device=device) // per_frame
    return frame[None, :] <= frame[:, None]


class ACPredictor(nn.Module):
    """Block-causal action-conditioned predictor over per-frame tokens.

    Args:
        enc_dim: D. n_patches: P. dim: E. depth, heads: transformer size. action_dim: A. proprio_dim: S.
    """

    def __init__(self, enc_dim=96, n_patches=16, dim=96, depth=3, heads=4, action_dim=2, proprio_dim=2):
        super().__init__()
        self.n_patches, self.dim, self.action_dim = n_patches, dim, action_dim
        self.z_in, self.z_out = nn.Linear(enc_dim, dim), nn.Linear(dim, enc_dim)
        self.a_in, self.s_in = nn.Linear(action_dim, dim), nn.Linear(proprio_dim, dim)
        self.s_out = nn.Linear(dim, proprio_dim)
        self.slot = nn.Parameter(torch.randn(1, 1, n_patches + 2, dim) * 0.02)  # which token of a frame
        self.transformer = Transformer(dim, depth, heads)
        nn.init.zeros_(self.z_out.weight), nn.init.zeros_(self.z_out.bias)  # start as copy-last

    def forward(self, z: torch.Tensor, actions: torch.Tensor, proprio: torch.Tensor):
        """Predict frame t+1 from frames 0..t, for every t at once.

        Args:
            z: (B, T, P, D) frozen features; actions: (B, T, A) - a_t leads from t to t+1; proprio: (B, T, S).
        Returns:
            z_next: (B, T, P, D) predictions of z_{t+1}; s_next: (B, T, S) predictions of s_{t+1}.
        """
        b, t, p, _ = z.shape
        if p != self.n_patches or actions.shape != (b, t, self.action_dim) or proprio.shape[:2] != (b, t):
            raise ValueError(
                f"expected z (B, T, {self.n_patches}, D), actions (B, T, {self.action_dim}), "
                f"proprio (B, T, S); "
                f"got {tuple(z.shape)}, {tuple(actions.shape)}, {tuple(proprio.shape)}"
            )
        x = torch.cat([self.a_in(actions)[:, :, None], self.s_in(proprio)[:, :, None], self.z_in(z)], 2)
        x = x + self.slot + sincos_1d(torch.arange(t), self.dim).to(x)[None, :, None]  # (B, T, P+2, E)
        x = self.transformer(x.reshape(b, t * (p + 2), self.dim), block_causal(t, p + 2, z.device))
        x = x.view(b, t, p + 2, self.dim)
        return z + self.z_out(x[:, :, 2:]), proprio + self.s_out(x[:, :, 1])

    def rollout(self, z0: torch.Tensor, s0: torch.Tensor, actions: torch.Tensor):
        """Imagine H steps from one observed frame, feeding each prediction back in.

        Args:
            z0: (B, P, D); s0: (B, S); actions: (B, H, A).
        Returns:
            z: (B, H, P, D) predicted features of frames 1..H; s: (B, H, S) predicted proprioception.
        """
        zs, ss = [z0], [s0]
        for k in range(actions.shape[1]):
            z_next, s_next = self(torch.stack(zs, 1), actions[:, : k + 1], torch.stack(ss, 1))
            zs.append(z_next[:, -1])
            ss.append(s_next[:, -1])
        return torch.stack(zs[1:], 1), torch.stack(ss[1:], 1)


def ac_losses(model: ACPredictor, z, actions, proprio, rollout_steps: int = 2) -> dict:
    """V-JEPA 2-AC's two losses (L1), plus an L1 on the predicted proprioception.

    Args:
        z: (B, T, P, D) frozen features of a trajectory; actions: (B, T, A); proprio: (B, T, S).
    Returns:
        {"teacher": next-frame L1 with true past features, "rollout": L1 over ``rollout_steps`` imagined
         steps from frame 0, "proprio": L1 of the predicted (x, y), "total": their sum}
    """
    z_next, s_next = model(z[:, :-1], actions[:, :-1], proprio[:, :-1])  # predictions of frames 1..T-1
    teacher = (z_next - z[:, 1:]).abs().mean()
    s_loss = (s_next - proprio[:, 1:]).abs().mean()
    z_roll, _ = model.rollout(z[:, 0], proprio[:, 0], actions[:, :rollout_steps])
    roll = (z_roll - z[:, 1 : rollout_steps + 1]).abs().mean()
    return {"teacher": teacher, "rollout": roll, "proprio": s_loss, "total": teacher + roll + s_loss}
