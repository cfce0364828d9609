"""Gradient descent on the action sequence, through the differentiable world model.

The world model is a differentiable function from actions to a cost, so why sample at all? Start from a
guess, backpropagate the cost to the actions, take Adam steps, and clip to the action bounds after each
step (projected gradient descent). It is cheap per step, but a learned model's gradients are only
trustworthy where the model has seen data: walls make the true cost flat or discontinuous, and the
model's smooth surrogate can point straight into them (see the README for what we measured).

Shape key: B problems planned together, K restarts, H horizon, A action dims.
"""

from __future__ import annotations

import torch


def gradient_plan(cost_fn, mean, n_restarts=8, n_steps=40, lr=0.2, gen=None):
    """Minimise ``cost_fn`` by Adam on the actions themselves, from ``n_restarts`` starting points.

    Args:
        cost_fn: differentiable (B, K, H, A) -> (B, K). mean: (B, H, A) the first guess (restart 0);
            the other restarts are uniform random sequences.
    Returns:
        (B, H, A) the best sequence found (always within [-1, 1]), and a list of n_steps (B,) tensors:
        the best cost at each step.
    """
    b, h, a = mean.shape
    init = torch.rand(b, n_restarts, h, a, generator=gen) * 2 - 1  # (B, K, H, A)
    init[:, 0] = mean
    actions = init.clone().requires_grad_(True)
    opt = torch.optim.Adam([actions], lr=lr)
    history = []
    for _ in range(n_steps):
        cost = cost_fn(actions)  # (B, K)
        opt.zero_grad()
        cost.sum().backward()  # the problems and restarts are independent: summing keeps them so
        opt.step()
        with torch.no_grad():
            actions.clamp_(-1, 1)  # project back onto the action bounds
        history.append(cost.detach().min(dim=1).values)
    with torch.no_grad():
        cost = cost_fn(actions)  # score the final, clipped actions
        best = cost.argmin(dim=1)  # (B,)
    return actions.detach()[torch.arange(b), best], history
