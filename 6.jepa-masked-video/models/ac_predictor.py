"""The V-JEPA 2-AC predictor: what will the frozen features be after this action?

Each frame t becomes a block of tokens: [action a_t, proprioception s_t, its P patch features z_t].
A block-causal mask lets every token of frame t attend to all tokens of frames 0..t and none later,
so one forward pass over T frames gives T next-frame predictions (teacher forcing), and the same model
rolls out step by step at planning time. The proprioception token of frame t predicts s_{t+1}, and a
render head draws all of z_{t+1} from the action and proprioception tokens' outputs: in this world a
frame's (nuisance-free) features are a function of the arm's pose, and one shared MLP learns that map
faster than P patch tokens drawing their part each.

Nothing here knows the simulator: the effect of an action (how far a push turns a joint) is learned
from the recorded trajectories. The current proprioception is an input (a robot knows its joints);
the goal's never is.

Shape key: B batch, T frames, P patch tokens per frame, D encoder dim, E predictor dim, A action dims (2),
S proprioception dims (4), H rollout horizon.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .vit import Transformer, sincos_1d


def block_causal(t: int, per_frame: int, device=None) -> torch.Tensor:
    """(t*per_frame, t*per_frame) bool: token i may attend to token j when frame(j) <= frame(i)."""
    frame = torch.arange(t * per_frame, device=device) // per_frame
    return frame[None, :] <= frame[:, None]


def fourier(s: torch.Tensor, n_freqs: int) -> torch.Tensor:
    """(..., S) values in [-1, 1] -> (..., S * (1 + 2 n_freqs)): s, sin(2^k pi s), cos(2^k pi s).

    The predictor must turn joint angles into features that peak where the arm is, bumps; sines of
    several wavelengths (NeRF's positional encoding) hand it the building blocks of such bumps."""
    k = torch.pi * 2.0 ** torch.arange(n_freqs, device=s.device, dtype=s.dtype)  # (n_freqs,)
    angles = (s[..., None] * k).flatten(-2)  # (..., S * n_freqs)
    return torch.cat([s, angles.sin(), angles.cos()], -1)


class ACPredictor(nn.Module):
    """Block-causal action-conditioned predictor over per-frame tokens.

    Args:
        enc_dim: D. n_patches: P. dim: E. depth, heads: transformer size. action_dim: A. proprio_dim: S.
        n_freqs: sine frequencies of the proprioception's encoding (0: the raw values only).
        render: hidden width of the head that turns the action and proprioception tokens into every
            patch's features.
    """

    def __init__(
        self,
        enc_dim=96,
        n_patches=16,
        dim=96,
        depth=3,
        heads=4,
        action_dim=2,
        proprio_dim=4,
        n_freqs=2,
        render=256,
    ):
        super().__init__()
        self.n_patches, self.dim, self.action_dim, self.n_freqs = n_patches, dim, action_dim, n_freqs
        width = proprio_dim * (1 + 2 * n_freqs)  # the size of a sine-encoded proprioception
        self.z_in = nn.Linear(enc_dim, dim)
        self.a_in, self.s_in = nn.Linear(action_dim, dim), nn.Linear(width, dim)
        self.s_out = nn.Linear(dim, proprio_dim)
        # The render head: one MLP from the action and proprioception tokens' outputs to all P x D
        # features of the next frame.
        self.render = nn.Sequential(
            nn.Linear(2 * dim, render), nn.GELU(), nn.Linear(render, n_patches * enc_dim)
        )
        self.slot = nn.Parameter(torch.randn(1, 1, n_patches + 2, dim) * 0.02)  # which token of a frame
        self.transformer = Transformer(dim, depth, heads)

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
        a_tok = self.a_in(actions)[:, :, None]  # (B, T, 1, E)
        s_tok = self.s_in(fourier(proprio, self.n_freqs))[:, :, None]  # (B, T, 1, E)
        x = torch.cat([a_tok, s_tok, self.z_in(z)], 2)  # (B, T, P+2, E)
        x = x + self.slot + sincos_1d(torch.arange(t), self.dim).to(x)[None, :, None]
        x = self.transformer(x.reshape(b, t * (p + 2), self.dim), block_causal(t, p + 2, z.device))
        x = x.view(b, t, p + 2, self.dim)
        z_next = self.render(x[:, :, :2].flatten(2)).view(b, t, p, -1)  # (B, T, P, D)
        return z_next, proprio + self.s_out(x[:, :, 1])

    def rollout(self, z0: torch.Tensor, s0: torch.Tensor, actions: torch.Tensor, window: int | None = None):
        """Imagine H steps from one observed frame, feeding each prediction back in.

        Args:
            z0: (B, P, D); s0: (B, S); actions: (B, H, A). window: how many of the latest frames the
                predictor reads at each step (None: all; 1: the last only, as the planner does - the arm
                is Markov given a frame and its proprioception, and it is several times cheaper).
        Returns:
            z: (B, H, P, D) predicted features of frames 1..H; s: (B, H, S) predicted proprioception.
        """
        zs, ss = [z0], [s0]
        for k in range(actions.shape[1]):
            lo = 0 if window is None else max(0, k + 1 - window)
            z_next, s_next = self(torch.stack(zs[lo:], 1), actions[:, lo : k + 1], torch.stack(ss[lo:], 1))
            zs.append(z_next[:, -1])
            ss.append(s_next[:, -1])
        return torch.stack(zs[1:], 1), torch.stack(ss[1:], 1)


def ac_losses(model: ACPredictor, z, actions, proprio, rollout_steps: int = 2) -> dict:
    """V-JEPA 2-AC's two losses (L1), plus an L1 on the predicted proprioception.

    Args:
        z: (B, T, P, D) frozen features of a trajectory; actions: (B, T, A); proprio: (B, T, S).
    Returns:
        {"teacher": next-frame L1 with true past features, "rollout": L1 over ``rollout_steps`` imagined
         steps from frame 0 (window 1, as the planner imagines), "proprio": L1 of the predicted
         proprioception, "total": their sum}
    """
    z_next, s_next = model(z[:, :-1], actions[:, :-1], proprio[:, :-1])  # predictions of frames 1..T-1
    teacher = (z_next - z[:, 1:]).abs().mean()
    s_loss = (s_next - proprio[:, 1:]).abs().mean()
    z_roll, _ = model.rollout(z[:, 0], proprio[:, 0], actions[:, :rollout_steps], window=1)  # as planned
    roll = (z_roll - z[:, 1 : rollout_steps + 1]).abs().mean()
    return {"teacher": teacher, "rollout": roll, "proprio": s_loss, "total": teacher + roll + s_loss}
