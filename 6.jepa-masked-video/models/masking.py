"""Multi-block spatio-temporal masks (V-JEPA): rectangles on the token grid, repeated over all time.

Why blocks, not random tokens? Neighbouring tokens are nearly copies of each other; hiding scattered
single tokens lets the predictor interpolate from the neighbours. Hiding large blocks that span the
whole clip removes the answer from every frame, so the predictor must understand the scene.
V-JEPA uses 8 small blocks (15 % of the frame each) and 2 large ones (70 %); the union masks ~75-90 %.

Shape key: B batch, N tokens, K kept (visible) tokens, M masked tokens.
"""

from __future__ import annotations

import numpy as np
import torch


def multiblock_mask(
    grid: tuple[int, int, int],
    rng: np.random.Generator,
    n_blocks: int = 8,
    scale: tuple[float, float] = (0.15, 0.15),
    aspect: tuple[float, float] = (0.75, 1.5),
    min_keep: int = 4,
) -> np.ndarray:
    """One mask as a bool grid (t, h, w), True = masked: the union of ``n_blocks`` rectangles, each
    covering a ``scale`` fraction of the frame with an aspect ratio in ``aspect``, over every time step."""
    t, h, w = grid
    for _ in range(100):  # redraw in the (rare) case too few tokens stay visible
        spatial = np.zeros((h, w), dtype=bool)
        for _ in range(n_blocks):
            area = rng.uniform(*scale) * h * w
            ratio = np.exp(rng.uniform(np.log(aspect[0]), np.log(aspect[1])))
            bh = int(np.clip(round(np.sqrt(area * ratio)), 1, h))
            bw = int(np.clip(round(np.sqrt(area / ratio)), 1, w))
            top, left = rng.integers(0, h - bh + 1), rng.integers(0, w - bw + 1)
            spatial[top : top + bh, left : left + bw] = True
        if (~spatial).sum() * t >= min_keep:
            return np.broadcast_to(spatial, (t, h, w)).copy()
    raise RuntimeError("could not draw a mask that leaves enough visible tokens")


def sample_masks(
    grid: tuple[int, int, int], batch: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A short-range (8 blocks of 15 %) or long-range (2 blocks of 70 %) mask, one per batch, as indices.

    One mask per batch keeps every clip's token count equal (no padding); it changes every step.
    Returns:
        keep: (B, K) long indices of the visible tokens; masked: (B, M) long indices of the hidden ones.
    """
    if rng.random() < 0.5:
        mask = multiblock_mask(grid, rng, n_blocks=8, scale=(0.15, 0.15))
    else:
        mask = multiblock_mask(grid, rng, n_blocks=2, scale=(0.7, 0.7))
    flat = torch.from_numpy(mask.reshape(-1))  # (N,) time-major, as the encoder's tokens
    keep, masked = (~flat).nonzero().squeeze(1), flat.nonzero().squeeze(1)
    return keep.expand(batch, -1), masked.expand(batch, -1)
