"""DINO-WM's predictor: a ViT over the patch features of ``num_hist`` past frames that predicts the
next frame's patch features, with a frame-level causal mask.

Shape key: B batch, T frames, N patch tokens per frame (16), D feature dim of the frozen encoder,
E predictor width, A action dims (2), P proprioception dims (4: cos and sin of the two joint angles).

Each patch token of frame t carries three things, concatenated *along the feature dimension* as DINO-WM
does (not as extra tokens):

    [ patch feature z_t,n (D) | proprio embedding e(p_t) (K) | action embedding e(a_t) (K) ]

so every token knows how the arm's joints stand and what it does next. All T*N tokens attend to each
other under a *frame-level causal mask*: a token of frame t sees every token of frames <= t (all
patches of the past, so it can find the arm anywhere) and nothing of frames > t. The output at frame t is the
prediction of frame t+1; without the mask, during teacher-forced training it could simply read the
answer from frame t+1's tokens.
"""

from __future__ import annotations

import torch
from torch import nn

from .vit import Block


def frame_causal_mask(t: int, n: int) -> torch.Tensor:
    """(T*N, T*N) bool: True where token i may attend to token j, i.e. frame(j) <= frame(i)."""
    frame = torch.arange(t).repeat_interleave(n)  # (T*N,) the frame index of every token
    return frame[None, :] <= frame[:, None]


class FeaturePredictor(nn.Module):
    """Predict the next frame's patch features (and proprioception) from past features, proprio, actions.

    Args:
        feat_dim: D of the encoder's patch features. n_tokens: N patches per frame.
        num_hist: the longest context (frames). dim, depth, heads: the predictor ViT's size.
        emb: K, the width of the action and proprio embeddings. causal: False drops the mask (ablation).
    """

    def __init__(
        self, feat_dim: int, n_tokens: int = 16, num_hist: int = 3, dim: int = 64, depth: int = 3,
        heads: int = 4, emb: int = 16, action_dim: int = 2, proprio_dim: int = 4, causal: bool = True,
    ):  # fmt: skip
        super().__init__()
        self.feat_dim, self.n_tokens, self.num_hist, self.causal = feat_dim, n_tokens, num_hist, causal
        self.action_emb = nn.Linear(action_dim, emb)  # DINO-WM: a linear (1-D conv) embedding of the action
        self.proprio_emb = nn.Linear(proprio_dim, emb)
        self.inp = nn.Linear(feat_dim + 2 * emb, dim)  # the concatenated token -> predictor width
        self.pos_space = nn.Parameter(torch.randn(1, 1, n_tokens, dim) * 0.02)  # which patch
        self.pos_time = nn.Parameter(torch.randn(1, num_hist, 1, dim) * 0.02)  # which frame of the window
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, feat_dim)  # the change of each patch feature
        self.proprio_head = nn.Linear(dim, proprio_dim)  # the change of the proprio, from the mean token
        nn.init.zeros_(self.head.weight)  # start as copy-last: predict no change
        nn.init.zeros_(self.head.bias)

    def forward(self, z: torch.Tensor, proprio: torch.Tensor, actions: torch.Tensor):
        """Teacher-forced prediction of every next frame.

        Args:
            z: (B, T, N, D) patch features of frames 0..T-1 (T <= num_hist).
            proprio: (B, T, P) the arm's joint angles (cos, sin) at those frames.
            actions: (B, T, A) a_t taken at frame t.
        Returns:
            z_next: (B, T, N, D) predicted features of frames 1..T; p_next: (B, T, P) predicted proprio.
        """
        if z.dim() != 4 or z.shape[1] > self.num_hist or tuple(z.shape[2:]) != (self.n_tokens, self.feat_dim):
            raise ValueError(
                f"expected features (B, T<={self.num_hist}, {self.n_tokens}, {self.feat_dim}), "
                f"got {tuple(z.shape)}"
            )
        b, t, n, _ = z.shape
        p_dim, a_dim = self.proprio_emb.in_features, self.action_emb.in_features
        if proprio.shape != (b, t, p_dim) or actions.shape != (b, t, a_dim):
            raise ValueError(
                f"expected proprio (B, T, {p_dim}) and actions (B, T, {a_dim}) with B, T = {b}, {t}, "
                f"got {tuple(proprio.shape)} and {tuple(actions.shape)}"
            )
        pa = torch.cat([self.proprio_emb(proprio), self.action_emb(actions)], dim=-1)  # (B, T, 2K)
        x = torch.cat([z, pa[:, :, None].expand(-1, -1, n, -1)], dim=-1)  # (B, T, N, D + 2K): every patch
        x = self.inp(x) + self.pos_space + self.pos_time[:, :t]  # (B, T, N, E)
        x = x.reshape(b, t * n, -1)  # (B, L = T*N, E): one sequence of every token of every frame
        mask = frame_causal_mask(t, n).to(z.device) if self.causal else None
        for block in self.blocks:
            x = block(x, mask)
        x = self.norm(x).view(b, t, n, -1)  # (B, T, N, E)
        z_next = z + self.head(x)  # predict the change: most patches do not move
        p_next = proprio + self.proprio_head(x.mean(dim=2))  # (B, T, P)
        return z_next, p_next


def rollout(model: FeaturePredictor, z0: torch.Tensor, p0: torch.Tensor, actions: torch.Tensor,
            window: int | None = None):  # fmt: skip
    """Open loop: from one true frame, predict ``H`` frames, feeding predictions back in.

    Args:
        z0: (B, N, D) features of the start frame; p0: (B, P) its proprio; actions: (B, H, A).
        window: how many past frames the predictor reads (default: its num_hist), a sliding window.
    Returns:
        (B, H, N, D) predicted features and (B, H, P) predicted proprio of frames 1..H.
    """
    window = window or model.num_hist
    zs, ps = [z0], [p0]
    for h in range(actions.shape[1]):
        lo = max(0, h + 1 - window)
        z_in, p_in = torch.stack(zs[lo:], dim=1), torch.stack(ps[lo:], dim=1)  # (B, w, N, D), (B, w, P)
        z_next, p_next = model(z_in, p_in, actions[:, lo : h + 1])
        zs.append(z_next[:, -1])  # only the newest prediction is new
        ps.append(p_next[:, -1])
    return torch.stack(zs[1:], dim=1), torch.stack(ps[1:], dim=1)
