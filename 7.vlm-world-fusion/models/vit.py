"""A tiny ViT image encoder: the SigLIP role of a vision-language model, in small.

The frame is cut into 8x8-pixel patches, each flattened and projected to a token, a learned position
embedding is added, and non-causal transformer blocks let every patch read every other. The output is
one feature vector per patch; the VLM projects them to the language model's width (image tokens).
Real VLMs pre-train their vision encoder on its own (SigLIP) before joining it to the LM; our small
stand-in for that is a patch probe trained beside the answers: which patch holds the agent?

Shape key: B batch, C channels (3), H/W frame height/width (32), P patches (16), F patch pixels
(8 * 8 * 3 = 192), V vision width.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from einops import rearrange

from .transformer import Block, RMSNorm


def check_frames(frames: torch.Tensor, size: int) -> None:
    """Raise a ValueError naming the expected shape unless frames is (B, 3, size, size)."""
    if frames.ndim != 4 or tuple(frames.shape[1:]) != (3, size, size):
        raise ValueError(f"frames must be (B, 3, {size}, {size}) floats in [0, 1], got {tuple(frames.shape)}")


class TinyViT(nn.Module):
    """Patch embedding + learned positions + ``depth`` transformer blocks.

    Args:
        size: frame side (32). patch: patch side (8). dim: V. depth, heads: the blocks.
    """

    def __init__(self, size: int = 32, patch: int = 8, dim: int = 128, depth: int = 3, heads: int = 4):
        super().__init__()
        self.size, self.patch, self.dim = size, patch, dim
        self.n_patches = (size // patch) ** 2
        self.embed = nn.Linear(3 * patch * patch, dim)
        self.pos = nn.Parameter(torch.randn(1, self.n_patches, dim) * 0.2)
        self.blocks = nn.ModuleList([Block(dim, heads, causal=False, use_rope=False) for _ in range(depth)])
        self.norm = RMSNorm(dim)
        self.agent_head = nn.Linear(dim, 1)  # pre-training probe: "the agent is in this patch" (a logit)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames: (B, 3, H, W) floats in [0, 1] -> patch features (B, P, V)."""
        check_frames(frames, self.size)
        x = rearrange(frames, "b c (h p) (w q) -> b (h w) (p q c)", p=self.patch, q=self.patch)  # (B, P, F)
        x = self.embed(x) + self.pos  # (B, P, V); black background -> only the bias
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def agent_logits(self, features: torch.Tensor) -> torch.Tensor:
        """Patch features (B, P, V) -> (B, P) logits of "the agent's centre is in this patch"."""
        return self.agent_head(features).squeeze(-1)
