"""What every codec of this chapter shares: frame checks, patchify, and the foreground-weighted loss.

Shape key: B batch, C channels (3), S frame side (64), P patch side, N patches, D latent width.
"""

from __future__ import annotations

import torch
from torch.func import functional_call
from torch.nn import functional as F


def check_frames(x, size: int) -> None:
    """Raise a ValueError naming the expected input unless ``x`` is a float tensor (B, 3, size, size)."""
    if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x):
        kind = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected a float tensor of shape (B, 3, {size}, {size}) in [0, 1], got {kind}")
    if x.dim() != 4 or tuple(x.shape[1:]) != (3, size, size):
        raise ValueError(f"expected frames of shape (B, 3, {size}, {size}), got {tuple(x.shape)}")


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """(B, 3, S, S) -> (B, N, P*P*3): the frame cut into non-overlapping P x P patches, row by row."""
    b, c, s, _ = x.shape
    g = s // p
    x = x.reshape(b, c, g, p, g, p).permute(0, 2, 4, 3, 5, 1)  # (B, g, g, P, P, C)
    return x.reshape(b, g * g, p * p * c)


def unpatchify(patches: torch.Tensor, p: int) -> torch.Tensor:
    """(B, N, P*P*3) -> (B, 3, S, S), the inverse of ``patchify``."""
    b, n, _ = patches.shape
    g = int(round(n**0.5))
    x = patches.reshape(b, g, g, p, p, 3).permute(0, 5, 1, 3, 2, 4)  # (B, C, g, P, g, P)
    return x.reshape(b, 3, g * p, g * p)


def weighted_mse(pred: torch.Tensor, target: torch.Tensor, fg_weight: float) -> torch.Tensor:
    """MSE in which the object and the 1-px ring around it count up to ``fg_weight`` times more.

    pred, target: frames (B, 3, S, S) (or any (B, ...) tensors, then weighted element by element).
    Why: a 2-px dot is under 0.1 % of a frame, so plain MSE is happiest erasing it. The weight comes
    from the target only (as in chapter 1): weighting by the prediction's brightness too made the
    online codec overshoot and fall back to an all-black output. For frames the brightness is spread
    to each pixel's 3x3 neighbourhood (a max-pool, as in chapter 3), so the dark ring where a misplaced
    blob would spill counts as much as the dot: chapter 3 measured the blob's centroid error halve.
    """
    if target.dim() == 4:
        bright = target.amax(dim=-3, keepdim=True)  # (B, 1, S, S)
        bright = F.max_pool2d(bright, 3, stride=1, padding=1)  # the object and its 1-px ring
    else:
        bright = target
    weight = 1.0 + (fg_weight - 1.0) * bright
    return (weight * (pred - target).pow(2)).mean()


def relative_weighted_mse(pred: torch.Tensor, target: torch.Tensor, fg_weight: float) -> torch.Tensor:
    """``weighted_mse(pred, target)`` divided by ``weighted_mse(0, target)``: a scale-free error.

    0 is perfect, 1 is as bad as an all-black prediction (the dot erased), 2 is a dot drawn in the
    wrong place. Why: the plain weighted MSE of a dot frame is ~1e-3, so with the triple loss's
    weights (patch 0.2, action 1.0) the pixels had almost no say and erasing the dot in the "move"
    prediction was the cheapest way to satisfy the action classifier (measured). On this scale an
    erased dot costs as much as a wrong action guess.
    """
    return weighted_mse(pred, target, fg_weight) / weighted_mse(
        torch.zeros_like(target), target, fg_weight
    ).clamp_min(1e-8)


def explained_variance(pred: torch.Tensor, target: torch.Tensor) -> float:
    """R^2 = 1 - sum (target - pred)^2 / sum (target - mean)^2 over all patch elements (1 is perfect)."""
    sse = (target - pred).pow(2).sum()
    sst = (target - target.mean()).pow(2).sum().clamp_min(1e-12)
    return float(1 - sse / sst)


def frozen_call(module: torch.nn.Module, *args):
    """Run ``module`` with its weights detached: gradients reach the inputs but not the weights.

    The learner decodes its *predictions* this way, so the predictor's losses shape the predictor (and,
    through the inputs, the encoder) while the decoder is trained by reconstruction alone.
    """
    params = {k: v.detach() for k, v in module.named_parameters()}
    return functional_call(module, {**params, **dict(module.named_buffers())}, args)
