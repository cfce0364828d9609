"""Random shooting: the simplest planner. Sample many action sequences, imagine each, keep the best.

It needs no gradient and no iteration, which makes it the baseline for CEM: with the same number of
imagined sequences, how much does refitting a distribution to the best ones buy?

Shape key: B problems planned together, S samples, H horizon, A action dims.
"""

from __future__ import annotations

import torch


@torch.no_grad()
def random_shooting(cost_fn, b: int, horizon: int, n_samples: int = 3000, action_dim: int = 2, gen=None):
    """Return the best of ``n_samples`` uniformly random action sequences in [-1, 1].

    Args:
        cost_fn: (B, S, H, A) -> (B, S). b: how many problems. horizon: H.
    Returns:
        (B, H, A) the best sequence per problem, and [its cost (B,)] (one entry: there are no iterations).
    """
    samples = torch.rand(b, n_samples, horizon, action_dim, generator=gen) * 2 - 1  # (B, S, H, A)
    cost = cost_fn(samples)  # (B, S)
    best = cost.argmin(dim=1)  # (B,)
    return samples[torch.arange(b), best], [cost.min(dim=1).values]
