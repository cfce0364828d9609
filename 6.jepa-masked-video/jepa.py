"""The V-JEPA objective, written out: masks, context encoder, predictor, EMA target, L1, collapse monitor.

    clip, scene B ──► target encoder (EMA copy, no gradient) ──► LayerNorm ──► targets at masked positions
                                                                                    │ L1
    clip, scene A ──► drop masked tokens ─► context encoder ─► predictor (+ mask tokens) ─► predictions

Domain randomisation: the two encoders see the *same* arm motion rendered under two different scenes
(background, tint, distractor). The targets are then predictable only through what both renders share,
the arm, so the encoder learns to drop the nuisance.

Shape key: B batch, N tokens, K visible, M masked, D feature dim.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from models import sample_masks


def momentum_at(step: int, total: int, start: float = 0.99, end: float = 1.0) -> float:
    """The EMA momentum schedule: linear from ``start`` to ``end`` over training (V-JEPA: 0.998 -> 1).

    A lower momentum early lets the target follow the quickly improving encoder; near 1 at the end it
    freezes the target, so the last steps chase a fixed goal."""
    return start + (end - start) * min(step / max(total, 1), 1.0)


@torch.no_grad()
def ema_update(target: torch.nn.Module, online: torch.nn.Module, momentum: float) -> None:
    """target <- momentum * target + (1 - momentum) * online, parameter by parameter."""
    for p_t, p_o in zip(target.parameters(), online.parameters(), strict=True):
        p_t.mul_(momentum).add_(p_o.detach(), alpha=1 - momentum)


def make_target(encoder: torch.nn.Module) -> torch.nn.Module:
    """A frozen copy of the encoder: the EMA target (it never receives a gradient)."""
    target = copy.deepcopy(encoder)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


def feature_spread(features: torch.Tensor) -> float:
    """The collapse monitor: std across the batch of (B, N, D) features, averaged over tokens and dims.

    A collapsed encoder gives every clip the same features, so this falls to ~0."""
    return features.float().std(dim=0).mean().item()


def jepa_loss(
    encoder,
    predictor,
    target_encoder,
    clips: torch.Tensor,
    rng: np.random.Generator,
    stop_grad: bool = True,
    target_clips: torch.Tensor | None = None,
    visible_weight: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The masked-prediction loss for one batch.

    Args:
        encoder: the context encoder (trained). predictor: the MaskedPredictor.
        target_encoder: the EMA encoder; with ``stop_grad=False`` pass the context encoder itself: the
            ablation without EMA or stop-gradient, in which the targets are trained too (and collapse).
        clips: (B, T, 3, H, W) floats in [0, 1], the context encoder's view.
        target_clips: (B, T, 3, H, W) the target encoder's view: the same motion under another scene
            (domain randomisation); None = the same clips.
        visible_weight: weight of an extra L1 on the *visible* positions: the predictor's output there
            against the target's features of the other scene (a direct cross-scene invariance term).
    Returns:
        loss: scalar L1 on the masked tokens; targets: (B, N, D) the layer-normed target features (detached).
    """
    inner = encoder.module if hasattr(encoder, "module") else encoder  # unwrap DDP for the grid
    keep, masked = sample_masks(inner.grid(clips.shape[1]), clips.shape[0], rng)  # (B, K), (B, M)
    keep, masked = keep.to(clips.device), masked.to(clips.device)
    with torch.set_grad_enabled(not stop_grad and torch.is_grad_enabled()):
        view = clips if target_clips is None else target_clips
        targets = F.layer_norm(target_encoder(view), (inner.dim,))  # (B, N, D) on the full clip
    tgt = torch.gather(targets, 1, masked[..., None].expand(-1, -1, inner.dim))  # (B, M, D)
    ctx = encoder(clips, keep)  # (B, K, D): the context encoder only ever sees the visible tokens
    if not visible_weight:
        pred = predictor(ctx, keep, masked)  # (B, M, D)
        return (pred - tgt).abs().mean(), targets.detach()
    pred = predictor(ctx, keep, masked, visible=True)  # (B, K + M, D)
    k = keep.shape[1]
    seen = torch.gather(targets, 1, keep[..., None].expand(-1, -1, inner.dim))  # (B, K, D)
    loss = (pred[:, k:] - tgt).abs().mean() + visible_weight * (pred[:, :k] - seen).abs().mean()
    return loss, targets.detach()
