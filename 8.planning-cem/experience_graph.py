"""How far apart are two places, going round the walls? Read off the recorded trajectories alone.

The learned objective's weak spot (see the README) is that it measures a straight-line-like distance to
the goal: behind a wall, every way round first leads *away* from the goal, so a short-horizon planner
presses against the wall. The oracle fixes that with the true shortest path, computed from the map of
the walls. A robot has no map, but it has its experience: every recorded transition (where the agent
was, where one action took it) is a short road that certainly exists. Chain those roads and the
shortest chain between two places is a distance that goes round the walls, because no recorded
transition ever went through one. This is the idea behind semi-parametric topological memory (SPTM,
Savinov et al. 2018) and search on the replay buffer (SoRB, Eysenbach et al. 2019).

Here the places are the cells of a G x G grid over the agent's recorded position (its proprioception),
each road is weighted by the distance between the centres of its two cells, and Floyd-Warshall (three
nested loops, the inner two vectorised) gives the shortest chain between every pair of cells. *Why not
weight a road by how far the agent really moved?* Then each link of a chain may start anywhere in the
cell where the last one ended, a free jump of up to a cell per link: measured against the true shortest
path on 60 tasks per room, that underestimated it by 10-14 %; centre to centre, by 2-3 %.

The planner never uses this table: train.py uses it as the target of a *learned* distance head
(models/world_model.py) that reads the distance off two latents, so that at planning time only the
model and the goal image are needed.

Shape key: N trajectories, T frames per trajectory, C = G * G cells.
"""

from __future__ import annotations

import numpy as np


def cell_of(p: np.ndarray, grid: int) -> np.ndarray:
    """Positions (..., 2) (x, y) in arena units [0, 1] -> cell index (...,) int in [0, grid * grid)."""
    ij = np.clip((np.asarray(p) * grid).astype(int), 0, grid - 1)  # (..., 2) as (column, row)
    return ij[..., 1] * grid + ij[..., 0]


def experience_distances(proprio: np.ndarray, grid: int = 32) -> np.ndarray:
    """Shortest distance from every grid cell to every other through the recorded transitions.

    Args:
        proprio: (N, T, 2) float, the agent's recorded (x, y) along each trajectory (one world).
        grid: G, cells per side.
    Returns:
        (C, C) float32: entry [i, j] = the shortest total distance (arena units) travelled along a chain
        of recorded transitions from cell i to cell j; 0 on the diagonal, inf if no chain exists.
    """
    n_cells = grid * grid
    a, b = cell_of(proprio[:, :-1], grid).ravel(), cell_of(proprio[:, 1:], grid).ravel()  # (N*(T-1),)
    centres = (np.stack(np.divmod(np.arange(n_cells), grid), -1)[:, ::-1] + 0.5) / grid  # (C, 2) (x, y)
    length = np.linalg.norm(centres[b] - centres[a], axis=-1)  # the road's length, from cell centre to centre
    dist = np.full((n_cells, n_cells), np.inf, dtype=np.float32)
    np.minimum.at(dist, (a, b), length.astype(np.float32))  # the shortest recorded road from a to b
    np.fill_diagonal(dist, 0.0)
    for k in range(n_cells):  # Floyd-Warshall: may the way from i to j go through cell k?
        np.minimum(dist, dist[:, k : k + 1] + dist[k : k + 1, :], out=dist)  # (C, C)
    return dist


def pair_targets(table: np.ndarray, p_from: np.ndarray, p_to: np.ndarray, grid: int) -> np.ndarray:
    """The distance the learned head is trained to predict, for pairs of positions of one world.

    Args:
        table: (C, C) from ``experience_distances``. p_from, p_to: (M, 2) positions.
    Returns:
        (M,) the experience distance between their cells, never less than the straight line between the
        positions themselves (a way round a wall is never shorter than the straight line, and inside one
        cell the table says 0, so the straight line keeps the last few pixels precise); inf where the
        cells were never connected (such pairs are left out of the loss).
    """
    d = table[cell_of(p_from, grid), cell_of(p_to, grid)]  # (M,)
    return np.maximum(d, np.linalg.norm(p_from - p_to, axis=-1))
