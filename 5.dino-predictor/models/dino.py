"""DINO: self-distillation with no labels (Caron et al., 2021), written out for our small ViT.

Two copies of the same ViT see two views of one image. The *student* is trained so that its
output distribution over K "prototypes" matches the *teacher's*; the teacher is never trained by
gradient: its weights are an exponential moving average (EMA) of the student's. What stops both from
outputting the same constant (collapse)?
    - centring: the teacher's logits minus a running mean of them, so no prototype can win for every
      image (this alone pushes towards a uniform output);
    - sharpening: a low teacher temperature (0.04 in DINO, 0.01 here, vs the student's 0.1), which
      pushes the other way, towards one confident prototype per image.
Together they leave one stable solution: different images -> different, confident prototypes.
Views: DINO's own are random crops of one image (multi-crop). Here the two views of a frame are two
renders of the same arm pose under different nuisance (domain randomisation, see training.py): two crops
of one frame would share its background and teach nothing about ignoring it.

Shape key: B batch, V views, K prototypes, E width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DINOHead(nn.Module):
    """[CLS] embedding (B, E) -> logits over K prototypes (B, K): MLP, L2-normalise, cosine to prototypes.

    ``use_bn``: batch normalisation inside the MLP (the official DINO's ``use_bn_in_head`` option). At
    initialisation a small ViT gives nearly the same [CLS] for every frame, so the teacher's outputs
    differ by far less than its temperature: centring then wins and both networks settle on the uniform
    distribution (measured on this chapter's first, point-mass world: the loss sat at log K). Batch norm
    rescales the small differences between the frames of a batch to unit size, so sharpening has
    something to sharpen.
    """

    def __init__(
        self, dim: int, n_prototypes: int = 256, hidden: int = 256, bottleneck: int = 64, use_bn=True
    ):
        super().__init__()
        norm = (lambda: nn.BatchNorm1d(hidden)) if use_bn else nn.Identity  # noqa: E731
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden), norm(), nn.GELU(), nn.Linear(hidden, hidden), norm(), nn.GELU(),
            nn.Linear(hidden, bottleneck),
        )  # fmt: skip
        self.prototypes = nn.Parameter(torch.randn(n_prototypes, bottleneck) * 0.02)  # (K, bottleneck)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, E) -> (B, K): the cosine similarity to each prototype (DINO's ``norm_last_layer``: unit
        prototypes, so logits stay in [-1, 1] and the temperatures alone decide how sharp they are)."""
        return F.normalize(self.mlp(x), dim=-1) @ F.normalize(self.prototypes, dim=-1).T


def dino_loss(student: torch.Tensor, teacher: torch.Tensor, center: torch.Tensor, n_global: int,
              t_student: float = 0.1, t_teacher: float = 0.04) -> torch.Tensor:  # fmt: skip
    """The cross-entropy between the teacher's and the student's distributions, over pairs of views.

    Args:
        student: (V, B, K) logits of all V views (the first ``n_global`` are the global crops).
        teacher: (n_global, B, K) logits of the global crops (no gradient flows into them).
        center: (K,) running mean of the teacher's logits.
    Returns:
        mean over pairs (teacher view i, student view j != i) of -sum_k P_t(k) log P_s(k).
    """
    p_teacher = ((teacher - center) / t_teacher).softmax(dim=-1).detach()  # centre, then sharpen
    log_p_student = (student / t_student).log_softmax(dim=-1)  # (V, B, K)
    total, pairs = 0.0, 0
    for i in range(n_global):
        for j in range(len(student)):
            if i == j:  # the same view on both sides teaches nothing
                continue
            total = total + (-(p_teacher[i] * log_p_student[j]).sum(dim=-1)).mean()
            pairs += 1
    return total / pairs


@torch.no_grad()
def update_center(center: torch.Tensor, teacher: torch.Tensor, momentum: float = 0.9) -> torch.Tensor:
    """EMA of the teacher's mean logits: center <- m * center + (1 - m) * mean(teacher). (K,)."""
    return momentum * center + (1 - momentum) * teacher.reshape(-1, teacher.shape[-1]).mean(0)


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """teacher <- momentum * teacher + (1 - momentum) * student, parameter by parameter."""
    for pt, ps in zip(teacher.parameters(), student.parameters(), strict=True):
        pt.mul_(momentum).add_(ps.detach(), alpha=1 - momentum)


def ibot_patch_loss(student: torch.Tensor, teacher: torch.Tensor, center: torch.Tensor, mask: torch.Tensor,
                    t_student: float = 0.1, t_teacher: float = 0.04) -> torch.Tensor:  # fmt: skip
    """iBOT's masked-patch loss: at every patch in ``mask``, match the teacher's distribution for the same
    patch, which the teacher saw whole. (iBOT: the same view, masked patches only; training.py passes the
    other view's patches and a mask of every patch, so the loss also asks for invariance.)

    Args:
        student, teacher: (B, N, K) per-patch logits; center: (K,) running mean of the teacher's patch logits.
        mask: (B, N) bool, True where the student's patch was replaced by the mask token.
    Returns:
        the mean over masked patches of -sum_k P_t(k) log P_s(k).
    """
    p_teacher = ((teacher - center) / t_teacher).softmax(dim=-1).detach()  # (B, N, K)
    ce = -(p_teacher * (student / t_student).log_softmax(dim=-1)).sum(dim=-1)  # (B, N)
    return (ce * mask).sum() / mask.sum().clamp(min=1)


def random_patch_mask(b: int, n: int, ratio: tuple[float, float], gen: torch.Generator) -> torch.Tensor:
    """(B, N) bool: for each image, a random fraction in ``ratio`` of its N patches is masked."""
    frac = torch.empty(b, 1).uniform_(*ratio, generator=gen)  # (B, 1)
    return torch.rand(b, n, generator=gen).argsort(dim=1).argsort(dim=1) < (frac * n).round().clamp(min=1)
