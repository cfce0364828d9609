"""A compact cross-entropy method (CEM) planner: the measuring stick of a feature space.

This is the minimum needed to ask "can we reach a goal image by planning in these features?". Chapter 8
(8.planning-cem) teaches planning properly: random shooting, CEM, gradient-based planning, MPC and an
oracle; here we only use CEM inside a model-predictive-control loop, as DINO-WM does.

CEM: keep a Gaussian over action sequences (H, A). Each iteration: sample S sequences, score each by
imagining it with the world model, keep the E best (the elites), refit the Gaussian to them. After a few
iterations the mean is the plan.

Shape key: B independent problems (episodes planned together), S samples, H horizon, A action dims.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


@torch.no_grad()
def cem(
    cost_fn: Callable[[torch.Tensor], torch.Tensor],
    mean: torch.Tensor,
    std: float = 0.7,
    n_samples: int = 100,
    n_elites: int = 10,
    n_iters: int = 5,
    gen: torch.Generator | None = None,
) -> torch.Tensor:
    """Minimise ``cost_fn`` over action sequences in [-1, 1].

    Args:
        cost_fn: (B, S, H, A) action sequences -> (B, S) costs.
        mean: (B, H, A) the initial plan (e.g. the previous plan shifted by one step, or zeros).
    Returns:
        (B, H, A) the final mean: the plan.
    """
    b, h, a = mean.shape
    std_t = torch.full_like(mean, std)  # (B, H, A)
    for _ in range(n_iters):
        noise = torch.randn(b, n_samples, h, a, generator=gen).to(mean.device)
        samples = (mean[:, None] + std_t[:, None] * noise).clamp(-1, 1)  # (B, S, H, A)
        samples[:, 0] = mean  # always keep the current mean as a candidate
        cost = cost_fn(samples)  # (B, S)
        elite_idx = cost.topk(n_elites, dim=1, largest=False).indices  # (B, E)
        elites = samples.gather(1, elite_idx[:, :, None, None].expand(-1, -1, h, a))  # (B, E, H, A)
        mean, std_t = elites.mean(dim=1), elites.std(dim=1) + 0.05  # refit; a floor keeps exploring
    return mean
