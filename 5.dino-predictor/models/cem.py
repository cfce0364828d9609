"""The cross-entropy method (CEM): the planner that measures whether a feature space is good for control.

The same recipe as chapter 8 (8.planning-cem/planners/cem.py, which teaches planning properly),
copied so that this chapter stands alone: keep a Gaussian over action sequences (H, A); each iteration,
sample S sequences, score each by imagining it, keep the E best (the elites), refit the Gaussian to
them. Two details that chapter 8 measured: a *narrow* first spread (0.3, not 1), and the current mean
and the best sequence scored so far are always among the candidates, so an iteration never loses a good
plan to sampling noise. After the last iteration the mean is the plan.

Shape key: B independent problems (episodes planned together), S samples, H horizon, A action dims.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


@torch.no_grad()
def cem(
    cost_fn: Callable[[torch.Tensor], torch.Tensor],
    mean: torch.Tensor,
    std: float = 0.3,
    n_samples: int = 100,
    n_elites: int = 10,
    n_iters: int = 5,
    min_std: float = 0.05,
    gen: torch.Generator | None = None,
) -> torch.Tensor:
    """Minimise ``cost_fn`` over action sequences in [-1, 1].

    Args:
        cost_fn: (B, S, H, A) action sequences -> (B, S) costs.
        mean: (B, H, A) the first guess (the previous plan shifted: a warm start, or zeros).
        std: the first standard deviation; min_std: the floor that keeps it exploring.
    Returns:
        (B, H, A) the final mean: the plan.
    """
    b, h, a = mean.shape
    std_t = torch.full_like(mean, std)  # (B, H, A)
    best, best_cost, rows = mean, torch.full((b,), float("inf"), device=mean.device), torch.arange(b)
    for _ in range(n_iters):
        noise = torch.randn(b, n_samples, h, a, generator=gen).to(mean.device)
        samples = (mean[:, None] + std_t[:, None] * noise).clamp(-1, 1)  # 1. sample: (B, S, H, A)
        samples[:, 0], samples[:, 1] = mean, best  # the current mean and the best so far are candidates
        cost = cost_fn(samples)  # 2. score: (B, S)
        i_min = cost.argmin(dim=1)  # (B,)
        better = cost[rows, i_min] < best_cost  # keep the best sequence ever scored
        best = torch.where(better[:, None, None], samples[rows, i_min], best)
        best_cost = torch.minimum(best_cost, cost[rows, i_min])
        idx = cost.topk(n_elites, dim=1, largest=False).indices  # 3. elites: (B, E)
        elites = samples[rows[:, None], idx]  # (B, E, H, A)
        mean, std_t = elites.mean(dim=1), elites.std(dim=1).clamp_min(min_std)  # 4. refit
    return mean
