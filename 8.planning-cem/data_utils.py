"""The point-mass rooms (`wall`, `umaze`), a batched true simulator for the oracle, cached datasets, tasks.

Adapted from chapter 5 (5.dino-predictor/data_utils.py, itself chapter 3's and chapter 1's
``PointMassRoom``), copied so that this chapter stands alone. New here:
- the agent moves faster (up to ``max_step`` = 0.05 of the arena per sub-step, 5 sub-steps per action,
  so up to 0.25 per action): 25 actions cross the arena through the door;
- ``step_positions``: the physics written once, on a *batch* of positions, so that the oracle planner can
  imagine thousands of action sequences with the true simulator as fast as the learned model does;
- ``distance_field`` / ``geodesic``: the true shortest-path distance to a goal round the walls
  (Dijkstra on a grid), the oracle's objective;
- seeded goal-reaching tasks and the goal image they come with.

- ``wall``: two rooms joined by a door at mid-height (DINO-WM's Wall task in small).
- ``umaze``: a bar from the left wall to 65 % of the width: the agent must go round it.

Shape key: N trajectories, T frames per trajectory, H/W frame height/width (64), A = 2 action dims,
M positions simulated together.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

DATA_DIR = Path(__file__).parent / "data"
AGENT_COLOUR = np.array([255, 140, 20], dtype=np.float32)  # orange
WALL_COLOUR = np.array([120, 120, 120], dtype=np.float32)  # grey
BORDER = [(0, 0, 1, 0.03), (0, 0.97, 1, 1), (0, 0, 0.03, 1), (0.97, 0, 1, 1)]
# Walls as axis-aligned rectangles (x0, y0, x1, y1) in arena units [0, 1]^2 (y points down).
LAYOUTS = {
    "wall": BORDER + [(0.47, 0.03, 0.53, 0.40), (0.47, 0.60, 0.53, 0.97)],  # door: y in [0.40, 0.60]
    "umaze": BORDER + [(0.03, 0.44, 0.65, 0.56)],
}
WORLDS = tuple(LAYOUTS)
SIZE, MAX_STEP, FRAME_SKIP, RADIUS = 64, 0.05, 5, 0.05


def soft_disc(size: int, cx: float, cy: float, radius: float) -> np.ndarray:
    """An anti-aliased disc as a (size, size) float32 mask in [0, 1] (chapter 1's)."""
    coords = np.arange(size, dtype=np.float32)
    dx, dy = coords[None, :] - cx, coords[:, None] - cy  # (1, W), (H, 1)
    return np.clip(radius + 0.5 - np.sqrt(dx**2 + dy**2), 0.0, 1.0)


def collides(walls: np.ndarray, p: np.ndarray, radius: float = RADIUS) -> np.ndarray:
    """Which disks overlap a wall. walls: (n_walls, 4); p: (M, 2) centres -> (M,) bool.

    A disk overlaps a rectangle when the rectangle's point nearest to its centre is closer than the
    radius; one wall at a time keeps the arrays small (the oracle calls this millions of times)."""
    x, y = p[:, 0], p[:, 1]  # (M,)
    hit = np.zeros(len(p), dtype=bool)
    for x0, y0, x1, y1 in walls:
        dx = np.maximum(np.maximum(x0 - x, x - x1), 0.0)  # (M,) distance to the wall along x (0 inside)
        dy = np.maximum(np.maximum(y0 - y, y - y1), 0.0)
        hit |= dx * dx + dy * dy < radius * radius
    return hit


def step_positions(walls: np.ndarray, pos: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """The true physics on a batch: hold each action (dx, dy) in [-1, 1]^2 for FRAME_SKIP sub-steps.

    Per sub-step the disk tries the full move, else slides along x, else along y, else stays.
    Args:
        walls: (n_walls, 4). pos: (M, 2) centres. actions: (M, 2), clipped to [-1, 1].
    Returns:
        (M, 2) the new centres.
    """
    pos = pos.astype(np.float64).copy()
    move = np.clip(actions, -1.0, 1.0) * MAX_STEP  # (M, 2)
    for _ in range(FRAME_SKIP):
        cand = pos + move  # (M, 2) most disks are free to make the full move
        free = ~collides(walls, cand)
        pos, todo = np.where(free[:, None], cand, pos), np.flatnonzero(~free)  # the blocked try to slide
        for delta in (move * [1, 0], move * [0, 1]):
            cand = pos[todo] + delta[todo]  # along x, else along y, else stay
            ok = ~collides(walls, cand)
            pos[todo[ok]] = cand[ok]
            todo = todo[~ok]
    return pos


def distance_field(walls: np.ndarray, goal: np.ndarray, grid: int = 64) -> np.ndarray:
    """The true shortest-path (geodesic) distance from every grid node to ``goal``, going round walls.

    Dijkstra on a (grid, grid) lattice of disk centres (node (i, j) at ((j + 0.5) / grid, (i + 0.5) / grid)),
    8-connected, through nodes where the disk touches no wall. The nodes within 2.5 cells of the goal start
    at their straight-line distance to it. Args: walls (n_walls, 4); goal (2,). Returns (grid, grid)
    distances in arena units (inf where the disk cannot be)."""
    c = (np.arange(grid) + 0.5) / grid
    nodes = np.stack(np.meshgrid(c, c), -1).reshape(-1, 2)  # (grid*grid, 2) as (x, y), row i = y
    free = ~collides(walls, nodes)
    dist = np.full(grid * grid, np.inf)
    near = free & (np.linalg.norm(nodes - goal, axis=1) < 2.5 / grid)
    dist[near] = np.linalg.norm(nodes[near] - goal, axis=1)
    heap = [(d, k) for k, d in zip(np.flatnonzero(near), dist[near], strict=True)]
    heapq.heapify(heap)
    steps = [(di, dj, np.hypot(di, dj) / grid) for di in (-1, 0, 1) for dj in (-1, 0, 1) if di or dj]
    while heap:
        d, k = heapq.heappop(heap)
        if d > dist[k]:
            continue  # a stale entry: k was reached more cheaply since
        i, j = divmod(k, grid)
        for di, dj, w in steps:
            n = (i + di) * grid + j + dj
            if 0 <= i + di < grid and 0 <= j + dj < grid and free[n] and d + w < dist[n]:
                dist[n] = d + w
                heapq.heappush(heap, (d + w, n))
    return dist.reshape(grid, grid)


def geodesic(field: np.ndarray, goal: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Shortest-path distance from positions to a goal read off ``distance_field``: the best of (a
    surrounding node's distance + the straight step to it) over the 4 nodes around each position, and
    the straight line when the goal is within 2 cells.

    Args:
        field: (G, G) one goal's field, goal (2,), p (M, 2); or B tasks at once: field (B, G, G),
            goal (B, 2), p (B, M, 2).
    Returns:
        (M,) or (B, M) distances.
    """
    grid = field.shape[-1]
    flat = field.reshape(-1, grid * grid)  # (B, G*G), B = 1 for one goal
    q = p.reshape(len(flat), -1, 2)  # (B, M, 2)
    j0, i0 = np.moveaxis(np.floor(q * grid - 0.5).astype(int), -1, 0)  # (B, M) the node below-left
    best = np.full(q.shape[:2], np.inf)
    for di in (0, 1):
        for dj in (0, 1):
            i, j = np.clip(i0 + di, 0, grid - 1), np.clip(j0 + dj, 0, grid - 1)  # (B, M)
            node = np.stack([(j + 0.5) / grid, (i + 0.5) / grid], -1)  # (B, M, 2)
            d_node = np.take_along_axis(flat, i * grid + j, axis=1)  # (B, M)
            best = np.minimum(best, d_node + np.linalg.norm(q - node, axis=-1))
    straight = np.linalg.norm(q - np.reshape(goal, (len(flat), 1, 2)), axis=-1)  # (B, M)
    return np.where(straight < 2 / grid, straight, best).reshape(p.shape[:-1])


class PointMassRoom:
    """An orange disk pushed by continuous actions in a room with walls (`wall` or `umaze`).

    ``pos`` is the centre (x, y) in arena units: the proprioception.
    """

    def __init__(self, world: str = "wall", seed: int = 0):
        if world not in LAYOUTS:
            raise ValueError(f"unknown environment {world!r}; expected one of {WORLDS}")
        self.world = world
        self.walls = np.array(LAYOUTS[world], dtype=np.float64)  # (n_walls, 4)
        self.rng = np.random.default_rng(seed)
        centres = (np.arange(SIZE) + 0.5) / SIZE  # pixel centres in arena units
        self.background = np.zeros((SIZE, SIZE, 3), dtype=np.float32)
        for x0, y0, x1, y1 in self.walls:
            inside = ((centres[None, :] >= x0) & (centres[None, :] < x1)) & (
                (centres[:, None] >= y0) & (centres[:, None] < y1)
            )
            self.background[inside] = WALL_COLOUR
        self.reset()

    def sample_free(self) -> np.ndarray:
        """A uniformly random position (x, y) where the disk touches no wall."""
        while True:
            p = self.rng.uniform(0.0, 1.0, size=2)
            if not collides(self.walls, p[None])[0]:
                return p

    def reset(self, pos=None) -> np.ndarray:
        """Place the agent at ``pos`` (or a random free position); return the first frame."""
        self.pos = self.sample_free() if pos is None else np.asarray(pos, dtype=np.float64).copy()
        return self.render()

    def step(self, action) -> np.ndarray:
        """Apply one action (dx, dy) in [-1, 1]^2 (held for FRAME_SKIP sub-steps); return the frame."""
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (2,) or not np.all(np.isfinite(a)) or np.abs(a).max() > 1.0 + 1e-6:
            raise ValueError(f"action must be (dx, dy) with values in [-1, 1], got {action!r}")
        self.pos = step_positions(self.walls, self.pos[None], a[None])[0]
        return self.render()

    def render(self, pos=None) -> np.ndarray:
        """The frame (64, 64, 3) uint8 with the agent at ``pos`` (default: where it is)."""
        cx, cy = (self.pos if pos is None else np.asarray(pos)) * SIZE - 0.5  # centre in pixels
        disc = soft_disc(SIZE, cx, cy, RADIUS * SIZE)[..., None]
        return np.clip(np.rint(self.background * (1 - disc) + AGENT_COLOUR * disc), 0, 255).astype(np.uint8)


def find_agent(frame: np.ndarray) -> np.ndarray:
    """Where the orange disk is in a frame (64, 64, 3) uint8: the centroid (x, y) of its pixels, in
    arena units (used to score a goal given only as a picture)."""
    w = np.clip(1 - np.abs(frame.astype(np.float32) - AGENT_COLOUR).sum(-1) / 255, 0, 1)  # (H, W)
    if w.sum() < 1:
        raise ValueError("no agent (orange disk) in this goal image")
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    return np.array([(w * (xs + 0.5)).sum(), (w * (ys + 0.5)).sum()]) / w.sum() / SIZE


def random_actions(rng: np.random.Generator, n: int, keep: float = 0.5) -> np.ndarray:
    """``n`` random actions (n, 2) float32 in [-1, 1]; each repeats the previous one with probability
    ``keep`` (so trajectories travel and cross the door); a third are scaled down so that the small,
    precise moves needed near a goal are in the data too."""
    acts = rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
    acts *= np.where(rng.random((n, 1)) < 0.33, rng.uniform(0, 0.5, (n, 1)), 1.0).astype(np.float32)
    for t in range(1, n):
        if rng.random() < keep:
            acts[t] = acts[t - 1]
    return acts


def make_trajectories(world: str, n: int, length: int, seed: int, quiet: bool = True) -> dict:
    """Simulate ``n`` random-action trajectories of ``length`` frames.

    Returns:
        {"frames": (N, T, 64, 64, 3) uint8, "actions": (N, T-1, 2) float32 - action t leads from frame t
         to frame t+1, "proprio": (N, T, 2) float32 the agent's (x, y) in arena units}
    """
    env, rng = PointMassRoom(world, seed=seed), np.random.default_rng(seed + 1)
    frames = np.empty((n, length, SIZE, SIZE, 3), dtype=np.uint8)
    proprio = np.empty((n, length, 2), dtype=np.float32)
    actions = np.stack([random_actions(rng, length - 1) for _ in range(n)])
    for i in tqdm(range(n), desc=f"simulating {world} (seed {seed})", disable=quiet):
        frames[i, 0], proprio[i, 0] = env.reset(), env.pos
        for t in range(1, length):
            frames[i, t], proprio[i, t] = env.step(actions[i, t - 1]), env.pos
    return {"frames": frames, "actions": actions, "proprio": proprio}


def load_trajectories(world: str, n: int, length: int, seed: int, quiet: bool = False) -> dict:
    """``make_trajectories`` generated once per (world, n, length, seed) and cached under data/ as .npz."""
    key = json.dumps({"world": world, "n": n, "length": length, "seed": seed, "v": 1})
    path = DATA_DIR / f"{world}_{hashlib.sha1(key.encode()).hexdigest()[:12]}.npz"
    if path.exists():
        with np.load(path) as f:
            return {k: f[k] for k in ("frames", "actions", "proprio")}
    data = make_trajectories(world, n, length, seed, quiet=quiet)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{np.random.randint(1 << 30)}.tmp.npz")  # one temp file per process
    np.savez(tmp, **data)
    tmp.replace(path)  # atomic: a crash mid-write never leaves a half-written cache
    return data


def make_tasks(world: str, n: int, seed: int, min_dist: float = 0.3) -> np.ndarray:
    """``n`` seeded goal-reaching tasks: (n, 2, 2) float, [start (x, y), goal (x, y)] at least ``min_dist``
    apart, both free positions drawn uniformly (DINO-WM's protocol for Wall: random start and goal)."""
    env, tasks = PointMassRoom(world, seed=seed), []
    while len(tasks) < n:
        start, goal = env.sample_free(), env.sample_free()
        if np.linalg.norm(start - goal) >= min_dist:
            tasks.append((start, goal))
    return np.array(tasks)
