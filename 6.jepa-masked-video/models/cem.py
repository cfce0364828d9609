"""The cross-entropy method (CEM): plan by minimising an energy over action sequences.

V-JEPA 2-AC plans this way: the energy of an action sequence is the L1 distance between the predictor's
imagined features after the sequence and the goal image's features. CEM keeps a Gaussian over sequences
(H, A); each iteration it samples S of them, scores each with the world model, keeps the E best (the
elites) and refits the Gaussian to them. After a few iterations the mean is the plan.

Shape key: B independent problems, S samples, H horizon, A action dims.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


@torch.no_grad()
def cem(
    cost_fn: Callable[[torch.Tensor], torch.Tensor],
    mean: torch.Tensor,
    std: float = 0.7,
    n_samples: int = 64,
    n_elites: int = 8,
    n_iters: int = 4,
    gen: torch.Generator | None = None,
) -> torch.Tensor:
    """Minimise ``cost_fn`` over action sequences in [-1, 1].

    Args:
        cost_fn: (B, S, H, A) action sequences -> (B, S) energies.
        mean: (B, H, A) the initial plan (the previous plan shifted by one step, or zeros).
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
