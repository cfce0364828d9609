"""Random shooting: the simplest planner. Sample many action sequences, imagine each, keep the best.

It needs no gradient and no iteration, which makes it the baseline for CEM: with the same number of
imagined sequences, how much does refitting a distribution to the best ones buy?

``random_shooting_one`` plans one task, ``random_shooting`` B tasks at once (one more leading dim).

Shape key: B tasks planned together, S samples, H horizon, A action dims.
"""

from __future__ import annotations

import torch

from .noise import draw


@torch.no_grad()
def random_shooting_one(cost_fn, horizon: int, n_samples: int = 3000, action_dim: int = 2, gen=None):
    """Return the best of ``n_samples`` uniformly random action sequences in [-1, 1], for one task.

    Args:
        cost_fn: (S, H, A) -> (S,). horizon: H. gen: a torch.Generator (or None).
    Returns:
        (H, A) the best sequence, and [its cost] (one entry: there are no iterations).
    """
    samples = torch.rand(n_samples, horizon, action_dim, generator=gen) * 2 - 1  # (S, H, A)
    cost = cost_fn(samples)  # (S,)
    return samples[cost.argmin()], [cost.min()]


@torch.no_grad()
def random_shooting(cost_fn, b: int, horizon: int, n_samples: int = 3000, action_dim: int = 2, gen=None):
    """``random_shooting_one`` for ``b`` tasks at once.

    Args:
        cost_fn: (B, S, H, A) -> (B, S). gen: a list of B generators (one stream per task), one, or None.
    Returns:
        (B, H, A) the best sequence per task, and [its cost (B,)].
    """
    samples = draw(gen, b, (n_samples, horizon, action_dim), "uniform")  # (B, S, H, A)
    cost = cost_fn(samples)  # (B, S)
    best = cost.argmin(dim=1)  # (B,)
    return samples[torch.arange(b), best], [cost.min(dim=1).values]
