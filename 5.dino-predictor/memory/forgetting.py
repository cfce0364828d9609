"""How the neural memory forgets: recall against the gap when the same trained memory forgets faster.

A write shrinks everything already in M by (1 - alpha) before it adds the new step (neural_memory.py).
Room A's last frame is written when it leaves the 3-frame context; at the return, G - 3 frames of room
B have been written after it, so what was written for room A is scaled by about (1 - alpha)^(G - 3),
the *retention*. Changing alpha at test time (every trained weight kept) moves only the retention: if
forgetting is what limits recall, recall should depend on G and alpha only through it.

Shape key: G gaps (1..12).
"""

from __future__ import annotations

import numpy as np
import torch

from .world import A_FRAMES, MAX_GAP


def retention(alpha: float) -> np.ndarray:
    """(G,) the factor (1 - alpha)^(G - 3) by which room A's writes have shrunk at the return frame."""
    return (1 - alpha) ** np.clip(np.arange(1, MAX_GAP + 1) - A_FRAMES, 0, None)


@torch.no_grad()
def forgetting(model, measure, decays) -> dict:
    """Recall on the return frame per gap for each test-time decay (the trained one first).

    Args:
        model: a MemoryPredictor with memory "neural".
        measure: a function predictor -> (G,) recall on the return frame (evaluation.measure, bound).
        decays: the alphas to try.
    Returns:
        {alpha: {"retention": (G,), "recall": (G,)}}.
    """
    trained, out = model.neural.decay, {}
    try:
        for alpha in decays:
            model.neural.decay = alpha
            out[alpha] = {"retention": retention(alpha), "recall": measure(model)}
    finally:
        model.neural.decay = trained
    return out
