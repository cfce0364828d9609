"""The cross-entropy method (CEM): random shooting that learns where to shoot.

Keep a Gaussian over action sequences, one mean and one standard deviation per (step, action dim).
Each iteration:
  1. sample S sequences from it (clipped to the action bounds [-1, 1]);
  2. score each by imagining it (the cost function);
  3. keep the E lowest-cost sequences: the elites;
  4. refit the mean and standard deviation to the elites.
After a few iterations the Gaussian has narrowed onto a good region and its mean is the plan. DINO-WM
and V-JEPA 2-AC plan this way (300 samples, 30 elites, 10 iterations in DINO-WM's Wall).

``cem_one`` plans one task; ``cem`` plans B tasks at once: the same four steps with one more leading
dimension, so that the world model runs once per iteration for every task together.

Shape key: B tasks planned together, S samples, E elites, H horizon, A action dims, K noise knots.
"""

from __future__ import annotations

import torch

from .noise import draw


@torch.no_grad()
def cem_one(cost_fn, mean, std=0.3, n_samples=300, n_elites=30, n_iters=10, min_std=0.05, hold=1, gen=None):
    """Minimise ``cost_fn`` over action sequences in [-1, 1], for one task.

    Args:
        cost_fn: (S, H, A) -> (S,). mean: (H, A) the first guess (zeros, or the previous plan shifted by
            one step: a warm start). std: the first standard deviation; 0.3, not 1: with wide samples
            most candidates near a wall push into it, every push costs the same as standing still, and
            the elites settle on pushing (measured: the oracle then stalled a few pixels from goals next
            to the door).
        hold: the sampling noise is held for ``hold`` steps (piecewise constant), so that samples are
            coherent moves (go right, then down) rather than jitter; 1 = independent per step.
        gen: a torch.Generator (or None).
    Returns:
        (H, A) the plan (the final mean), and a list of n_iters 0-d tensors: the best elite's cost at
        each iteration.
    """
    h, a = mean.shape
    std_t = torch.full_like(mean, std)  # (H, A)
    history, best, best_cost = [], mean, float("inf")
    for _ in range(n_iters):
        knots = torch.randn(n_samples, -(-h // hold), a, generator=gen)  # (S, K, A), K = ceil(H / hold)
        noise = knots.repeat_interleave(hold, dim=1)[:, :h]  # (S, H, A)
        samples = (mean + std_t * noise).clamp(-1, 1)  # 1. sample: (S, H, A)
        samples[0], samples[1] = mean, best  # the current mean and the best so far are candidates
        cost = cost_fn(samples)  # 2. score: (S,)
        i_min = int(cost.argmin())
        if cost[i_min] < best_cost:  # keep the best sequence ever scored
            best, best_cost = samples[i_min], float(cost[i_min])
        elite_cost, idx = cost.topk(n_elites, largest=False)  # 3. elites: (E,)
        elites = samples[idx]  # (E, H, A)
        mean, std_t = elites.mean(dim=0), elites.std(dim=0).clamp_min(min_std)  # 4. refit
        history.append(elite_cost[0])
    return mean, history


@torch.no_grad()
def cem(cost_fn, mean, std=0.3, n_samples=300, n_elites=30, n_iters=10, min_std=0.05, hold=1, gen=None):
    """``cem_one`` for B tasks at once: every tensor has one more leading dimension, B.

    Args:
        cost_fn: (B, S, H, A) -> (B, S). mean: (B, H, A). The rest as in ``cem_one``.
        gen: a list of B generators (task i draws its noise from gen[i], so it gets the plan it would
            get alone), one generator for the batch, or None.
    Returns:
        (B, H, A) the plans, and a list of n_iters (B,) tensors: each task's best elite cost per iteration.
    """
    b, h, a = mean.shape
    rows = torch.arange(b)  # (B,) to pick one sample per task
    std_t = torch.full_like(mean, std)  # (B, H, A)
    history, best, best_cost = [], mean, torch.full((b,), float("inf"))
    for _ in range(n_iters):
        knots = draw(gen, b, (n_samples, -(-h // hold), a))  # (B, S, K, A)
        noise = knots.repeat_interleave(hold, dim=2)[:, :, :h]  # (B, S, H, A)
        samples = (mean[:, None] + std_t[:, None] * noise).clamp(-1, 1)  # 1. sample: (B, S, H, A)
        samples[:, 0], samples[:, 1] = mean, best  # the current mean and the best so far are candidates
        cost = cost_fn(samples)  # 2. score: (B, S)
        i_min = cost.argmin(dim=1)  # (B,)
        better = cost[rows, i_min] < best_cost  # (B,) keep the best sequence ever scored
        best = torch.where(better[:, None, None], samples[rows, i_min], best)
        best_cost = torch.minimum(best_cost, cost[rows, i_min])
        elite_cost, idx = cost.topk(n_elites, dim=1, largest=False)  # 3. elites: (B, E)
        elites = samples[rows[:, None], idx]  # (B, E, H, A)
        mean, std_t = elites.mean(dim=1), elites.std(dim=1).clamp_min(min_std)  # 4. refit
        history.append(elite_cost[:, 0])
    return mean, history
