"""Gradient descent on the action sequence, through the differentiable world model.

The world model is a differentiable function from actions to a cost, so why sample at all? Start from a
guess, backpropagate the cost to the actions, take Adam steps, and clip to the action bounds after each
step (projected gradient descent). It is cheap per step, but a learned model's gradients are only
trustworthy where the model has seen data: walls make the true cost flat or discontinuous, and the
model's smooth surrogate can point straight into them (see the README for what we measured).

``gradient_plan_one`` plans one task, ``gradient_plan`` B tasks at once (one more leading dim).

Shape key: B tasks planned together, K restarts, H horizon, A action dims.
"""

from __future__ import annotations

import torch

from .noise import draw


def gradient_plan_one(cost_fn, mean, n_restarts=8, n_steps=40, lr=0.2, gen=None):
    """Minimise ``cost_fn`` by Adam on the actions themselves, from ``n_restarts`` starting points.

    Args:
        cost_fn: differentiable (K, H, A) -> (K,). mean: (H, A) the first guess (restart 0); the other
            restarts are uniform random sequences. gen: a torch.Generator (or None).
    Returns:
        (H, A) the best sequence found (always within [-1, 1]), and a list of n_steps 0-d tensors: the
        best cost at each step.
    """
    h, a = mean.shape
    init = torch.rand(n_restarts, h, a, generator=gen) * 2 - 1  # (K, H, A)
    init[0] = mean
    actions = init.clone().requires_grad_(True)
    opt = torch.optim.Adam([actions], lr=lr)
    history = []
    for _ in range(n_steps):
        cost = cost_fn(actions)  # (K,)
        opt.zero_grad()
        cost.sum().backward()  # the restarts are independent: summing keeps them so
        opt.step()
        with torch.no_grad():
            actions.clamp_(-1, 1)  # project back onto the action bounds
        history.append(cost.detach().min())
    with torch.no_grad():
        cost = cost_fn(actions)  # score the final, clipped actions
    return actions.detach()[cost.argmin()], history


def gradient_plan(cost_fn, mean, n_restarts=8, n_steps=40, lr=0.2, gen=None):
    """``gradient_plan_one`` for B tasks at once.

    Args:
        cost_fn: differentiable (B, K, H, A) -> (B, K). mean: (B, H, A). gen: a list of B generators
            (one stream per task), one, or None.
    Returns:
        (B, H, A) the best sequence per task, and a list of n_steps (B,) tensors: the best cost per step.
    """
    b, h, a = mean.shape
    init = draw(gen, b, (n_restarts, h, a), "uniform")  # (B, K, H, A)
    init[:, 0] = mean
    actions = init.clone().requires_grad_(True)
    opt = torch.optim.Adam([actions], lr=lr)  # Adam is per element: the tasks stay independent
    history = []
    for _ in range(n_steps):
        cost = cost_fn(actions)  # (B, K)
        opt.zero_grad()
        cost.sum().backward()  # the tasks and restarts are independent: summing keeps them so
        opt.step()
        with torch.no_grad():
            actions.clamp_(-1, 1)  # project back onto the action bounds
        history.append(cost.detach().min(dim=1).values)
    with torch.no_grad():
        cost = cost_fn(actions)  # score the final, clipped actions
        best = cost.argmin(dim=1)  # (B,)
    return actions.detach()[torch.arange(b), best], history
