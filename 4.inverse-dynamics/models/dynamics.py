"""The latent action model's decoder: frame_t and a condition -> frame_t+1, in pixel space.

Shape key: see trunk.py. V the condition vector's width (D for a latent action), k the advection
kernel's side (7).

Chapter 3 predicted FSQ tokens with a local space-time transformer; the LAM's decoder must be cheap
enough to train beside the encoder in a few minutes and must make the code matter. It has two paths:

    advection  condition --MLP--> softmax kernel (k x k) --conv over frame_t--> frame_t with its pixels moved
    refinement frame_t --pixel-unshuffle--> (48, 16, 16) --[conv3x3 -> norm -> FiLM(c) -> SiLU] x L--> change

Advection is the idea of CDNA (Finn, Goodfellow and Levine, 2016, "Unsupervised Learning for Physical
Interaction through Video Prediction"): the action does not paint the next frame, it says where the pixels
go. A softmax kernel sums to 1, so brightness is conserved and a dot cannot fade away over a long dream;
a learned delta at offset (2, 0) is an exact 2-px move. The refinement path (chapter 3's locality and
FiLM, at 4x4-pixel cells) adds what moving pixels cannot explain; its output starts at zero. Padding is
circular: the dot's world is a torus. The latent action model (lam.py) conditions it on its code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .trunk import check_frames, conv


def advect(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Move pixels with one kernel per sample: x (B, C, H, W), kernel (B, k, k) -> (B, C, H, W).

    out[b, c, i, j] = sum_{u, v} kernel[b, u, v] * x[b, c, i + u - k//2, j + v - k//2] (wrapping around).
    """
    b, c, h, w = x.shape
    k = kernel.shape[-1]
    padded = F.pad(x, [k // 2] * 4, mode="circular").reshape(1, b * c, h + k - 1, w + k - 1)
    weight = kernel.repeat_interleave(c, dim=0)[:, None]  # (B*C, 1, k, k): the same kernel for R, G, B
    return F.conv2d(padded, weight, groups=b * c).view(b, c, h, w)  # one group per (sample, channel)


class ConvDynamics(nn.Module):
    """frame_t (B, 3, 64, 64) and a condition (B, V) -> predicted frame_t+1 (B, 3, 64, 64).

    Args:
        cond_dim: V, the width of the condition vector (one-hot action or latent action code).
        width, depth: channels and number of FiLM-modulated conv layers of the refinement (0: none).
        kernel: k, the advection kernel's side (7 moves pixels up to 3 px).
    """

    def __init__(
        self, cond_dim: int, width: int = 32, depth: int = 2, kernel: int = 7, sharpness: float = 10.0
    ):
        super().__init__()
        self.cond_dim, self.k, self.sharpness = cond_dim, kernel, sharpness
        self.to_kernel = nn.Sequential(nn.Linear(cond_dim, 64), nn.SiLU(), nn.Linear(64, kernel * kernel))
        nn.init.zeros_(self.to_kernel[-1].weight)  # start from a uniform kernel: every move equally likely
        nn.init.zeros_(self.to_kernel[-1].bias)
        self.depth = depth
        if depth:
            self.inp = conv(48, width)
            self.convs = nn.ModuleList(conv(width, width) for _ in range(depth))
            self.norms = nn.ModuleList(nn.GroupNorm(4, width) for _ in range(depth))
            self.film = nn.Sequential(nn.Linear(cond_dim, 64), nn.SiLU(), nn.Linear(64, 2 * width * depth))
            self.out = conv(width, 48)
            nn.init.zeros_(self.out.weight)  # the refinement starts silent: advection alone
            nn.init.zeros_(self.out.bias)

    def kernels(self, cond: torch.Tensor) -> torch.Tensor:
        """The advection kernels (B, k, k) of conditions (B, V): non-negative, each sums to 1."""
        # ``sharpness`` scales the logits: a sharp (delta) kernel is reached in tens of steps, not thousands
        return (self.sharpness * self.to_kernel(cond.float())).softmax(dim=-1).view(-1, self.k, self.k)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, 64, 64) in [0, 1], cond: (B, V) -> (B, 3, 64, 64), unbounded (clamp to view)."""
        check_frames(x, "frame_t")
        if not isinstance(cond, torch.Tensor) or tuple(cond.shape) != (x.shape[0], self.cond_dim):
            got = tuple(cond.shape) if isinstance(cond, torch.Tensor) else type(cond).__name__
            raise ValueError(f"condition must have shape (B, V) = ({x.shape[0]}, {self.cond_dim}), got {got}")
        moved = advect(x, self.kernels(cond))  # (B, 3, 64, 64)
        if not self.depth:
            return moved
        gammas_betas = self.film(cond.float()).chunk(2 * self.depth, dim=1)  # each (B, width)
        h = self.inp(F.pixel_unshuffle(x * 2 - 1, 4))  # (B, width, 16, 16)
        for i, (c, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            gamma, beta = gammas_betas[2 * i][:, :, None, None], gammas_betas[2 * i + 1][:, :, None, None]
            h = h + F.silu(norm(c(h)) * (1 + gamma) + beta)  # residual, modulated by the condition
        return moved + F.pixel_shuffle(self.out(h), 4)  # (B, 3, 64, 64)


def weighted_mse(pred: torch.Tensor, target: torch.Tensor, fg_weight: float) -> torch.Tensor:
    """MSE in which bright (foreground) pixels of the target count up to ``fg_weight`` times more.

    From chapter 1's codec loss: a 3-px dot is 0.1 % of the frame, so with plain MSE "the dot does not
    move" (or "there is no dot") is already a tiny loss. pred, target: (B, 3, H, W) -> a scalar.
    """
    weight = 1.0 + (fg_weight - 1.0) * target.amax(dim=1, keepdim=True)  # (B, 1, H, W)
    return (weight * (pred - target).pow(2)).mean()
