"""The planning objective: how far is an imagined future from the goal? One for the learned model, one
for the true simulator (the oracle).

DINO-WM's objective is the distance between the predicted embedding and the goal image's embedding,
plus a proprioception term. Two details decide whether it works here (both measured, see the README):
- the cost is *summed over the horizon*, not taken at the last step only: a plan that gets there early
  and stays is better than one that passes through the goal at the last step;
- the latent distance is joined by the distance between the *positions* the model reads off the
  imagined latents and the goal image's: the latent alone brings the agent near the goal and stops a
  pixel or two short.

Shape key: B problems planned together, S candidate sequences, H horizon, A action dims, D latent dim.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from data_utils import distance_field, geodesic, step_positions

CostFn = Callable[[torch.Tensor], torch.Tensor]  # actions (B, S, H, A) -> costs (B, S)


def model_cost(
    model, z0, z_goal, latent_scale: float, pos_weight: float = 1.0, distance="straight", latent_weight=1.0
) -> CostFn:
    """The learned objective.

    Args:
        model: a WorldModel. z0: (B, D) the current latent. z_goal: (B, D) the goal image's latent.
        latent_scale: the mean squared distance between two random frames' latents (so the latent term
            is about 1 for unrelated frames). pos_weight: weight of the position term.
        distance: "straight": the position term is the straight line between the position read off the
            imagined latent and the goal's; "learned": the larger of that and the model's distance head
            (how far round the walls, learned from experience; never shorter than the straight line).
        latent_weight: weight of the latent term.
    Returns:
        cost_fn: actions (B, S, H, A) -> (B, S), differentiable (the gradient planner needs that).
    """
    if distance not in ("straight", "learned"):
        raise ValueError(f"distance must be 'straight' or 'learned', got {distance!r}")
    p_goal = model.position(z_goal)  # (B, 2) where the goal image says the agent should be

    def cost_fn(actions: torch.Tensor) -> torch.Tensor:
        s = actions.shape[1]
        z = model.rollout(z0[:, None].expand(-1, s, -1), actions)  # (B, S, H, D)
        latent = (z - z_goal[:, None, None]).pow(2).mean(-1) / latent_scale  # (B, S, H)
        pos = (model.position(z) - p_goal[:, None, None]).pow(2).sum(-1).add(1e-8).sqrt()  # (B, S, H)
        if distance == "learned":  # round the walls far away; the straight line keeps the last pixels exact
            pos = torch.maximum(pos, model.distance(z, z_goal[:, None, None]))  # (B, S, H)
        return (latent_weight * latent + pos_weight * pos).sum(-1)  # summed over the horizon

    return cost_fn


def oracle_cost(walls: np.ndarray, pos0: np.ndarray, goal: np.ndarray, fields=None) -> CostFn:
    """The oracle's objective: the true simulator imagines, and the cost is the distance of the true
    positions to the goal, summed over the horizon.

    Args:
        walls: (n_walls, 4) the room. pos0: (B, 2) true start positions. goal: (B, 2) true goal positions.
        fields: None for the straight-line distance, or one ``distance_field`` per goal for the true
            shortest-path distance round the walls (the default oracle: a perfect model *and* a
            perfect distance, so it has no local minimum behind a wall).
    Returns:
        cost_fn: actions (B, S, H, A) -> (B, S) (not differentiable: the simulator is numpy).
    """

    def cost_fn(actions: torch.Tensor) -> torch.Tensor:
        b, s, h, _ = actions.shape
        acts = actions.detach().cpu().double().numpy().reshape(b * s, h, 2)
        pos = np.repeat(pos0, s, axis=0)  # (B*S, 2)
        cost = np.zeros((b, s))
        for t in range(h):
            pos = step_positions(walls, pos, acts[:, t])
            p = pos.reshape(b, s, 2)
            if fields is None:
                cost += np.linalg.norm(p - goal[:, None], axis=-1)
            else:
                cost += np.stack([geodesic(fields[i], goal[i], p[i]) for i in range(b)])
        return torch.from_numpy(cost).float()

    return cost_fn


def oracle_fields(walls: np.ndarray, goals: np.ndarray) -> list[np.ndarray]:
    """One shortest-path distance field per goal (B, 2) -> B arrays (64, 64); computed once per episode."""
    return [distance_field(walls, g) for g in goals]
