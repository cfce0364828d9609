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

CostFn = Callable[[torch.Tensor], torch.Tensor]  # actions (B, S, H, A) -> costs (B, S), or (S, H, A) -> (S,)
# B tasks are scored CHUNK tasks at a time: 8 tasks x 300 samples keep the MLP's activations in the CPU's
# cache; 200 tasks in one tensor were 3x slower per task than one task alone (measured, 1 thread).
CHUNK = 8


def model_cost(
    model, z0, z_goal, latent_scale: float, pos_weight: float = 1.0, distance="straight", latent_weight=1.0,
    chunk: int = CHUNK,
) -> CostFn:  # fmt: skip
    """The learned objective, for one task or for B tasks at once.

    Args:
        model: a WorldModel. z0: the current latent, (D,) for one task or (B, D) for B tasks.
            z_goal: the goal image's latent, the same shape.
        latent_scale: the mean squared distance between two random frames' latents (so the latent term
            is about 1 for unrelated frames). pos_weight: weight of the position term (0: the latent
            distance alone, nothing read off the supervised position head).
        distance: "straight": the position term is the straight line between the position read off the
            imagined latent and the goal's; "learned": the larger of that and the model's distance head
            (how far round the walls, learned from experience; never shorter than the straight line).
        latent_weight: weight of the latent term.
        chunk: B tasks are scored ``chunk`` tasks at a time (the same arithmetic; see CHUNK).
    Returns:
        cost_fn: actions (S, H, A) -> (S,) for one task, (B, S, H, A) -> (B, S) for B tasks;
        differentiable (the gradient planner needs that).
    """
    if distance not in ("straight", "learned"):
        raise ValueError(f"distance must be 'straight' or 'learned', got {distance!r}")
    p_goal = model.position(z_goal)  # (P,) or (B, P): where the goal image says the agent should be

    def one(actions, z0, z_goal, p_goal):  # actions (S, H, A), z0 and z_goal (D,), p_goal (P,)
        z = model.rollout(z0.expand(actions.shape[0], -1), actions)  # (S, H, D)
        latent = (z - z_goal).pow(2).mean(-1) / latent_scale  # (S, H)
        pos = (model.position(z) - p_goal).pow(2).sum(-1).add(1e-8).sqrt()  # (S, H)
        if distance == "learned":  # round the walls far away; the straight line keeps the last pixels exact
            pos = torch.maximum(pos, model.distance(z, z_goal))  # (S, H)
        return (latent_weight * latent + pos_weight * pos).sum(-1)  # (S,) summed over the horizon

    def batch(actions, z0, z_goal, p_goal):  # the same with one more leading dim: actions (B, S, H, A)
        s = actions.shape[1]
        z = model.rollout(z0[:, None].expand(-1, s, -1), actions)  # (B, S, H, D)
        latent = (z - z_goal[:, None, None]).pow(2).mean(-1) / latent_scale  # (B, S, H)
        pos = (model.position(z) - p_goal[:, None, None]).pow(2).sum(-1).add(1e-8).sqrt()  # (B, S, H)
        if distance == "learned":
            pos = torch.maximum(pos, model.distance(z, z_goal[:, None, None]))  # (B, S, H)
        return (latent_weight * latent + pos_weight * pos).sum(-1)  # (B, S)

    def cost_fn(actions: torch.Tensor) -> torch.Tensor:
        if actions.dim() == 3:
            return one(actions, z0, z_goal, p_goal)
        parts = [slice(i, i + chunk) for i in range(0, len(actions), chunk)]  # a few tasks at a time
        return torch.cat([batch(actions[c], z0[c], z_goal[c], p_goal[c]) for c in parts])  # (B, S)

    return cost_fn


def oracle_cost(walls: np.ndarray, pos0: np.ndarray, goal: np.ndarray, fields=None) -> CostFn:
    """The oracle's objective: the true simulator imagines, and the cost is the distance of the true
    positions to the goal, summed over the horizon. B tasks at once (one task: B = 1).

    Args:
        walls: (n_walls, 4) the room. pos0: (B, 2) true start positions. goal: (B, 2) true goal positions.
        fields: None for the straight-line distance, or one ``distance_field`` per goal for the true
            shortest-path distance round the walls (the default oracle: a perfect model *and* a
            perfect distance, so it has no local minimum behind a wall).
    Returns:
        cost_fn: actions (B, S, H, A) -> (B, S) (not differentiable: the simulator is numpy).
    """
    fields = None if fields is None else np.stack(fields)  # (B, G, G)

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
                cost += geodesic(fields, goal, p)  # (B, S) every task's own field at once
        return torch.from_numpy(cost).float()

    return cost_fn


def oracle_fields(walls: np.ndarray, goals: np.ndarray) -> list[np.ndarray]:
    """One shortest-path distance field per goal (B, 2) -> B arrays (64, 64); computed once per episode."""
    return [distance_field(walls, g) for g in goals]
