"""The point-mass rooms of chapter 5 (`wall` and `umaze`), with a frame skip, and their cached datasets.

Adapted from chapter 3 (3.action-conditioning/data_utils.py, itself chapter 1's ``PointMassRoom``),
copied so that this chapter stands alone. New here: a second layout (`umaze`), a frame skip as in
DINO-WM (one action is held for ``frame_skip`` simulator sub-steps and only the last frame is kept), the
agent's proprioception (its (x, y) position), and goal-reaching tasks (start and goal positions).

- ``wall``: two rooms joined by a door at mid-height (DINO-WM's Wall task in small).
- ``umaze``: a bar from the left wall to 65 % of the width: the agent must go round it.

An action (dx, dy) in [-1, 1]^2 moves the agent by up to ``max_step`` = 0.02 of the arena per sub-step,
so by up to 0.1 (6.4 px) per kept frame with the default frame skip of 5.

Shape key: N trajectories, T frames per trajectory, H/W frame height/width (64), A = 2 action dims.
"""

from __future__ import annotations

import hashlib
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


def soft_disc(size: int, cx: float, cy: float, radius: float) -> np.ndarray:
    """An anti-aliased disc as a (size, size) float32 mask in [0, 1] (chapter 1's)."""
    coords = np.arange(size, dtype=np.float32)
    dx, dy = coords[None, :] - cx, coords[:, None] - cy  # (1, W), (H, 1)
    return np.clip(radius + 0.5 - np.sqrt(dx**2 + dy**2), 0.0, 1.0)


class PointMassRoom:
    """An orange disk pushed by continuous actions in a room with walls (`wall` or `umaze`).

    Args:
        world: the layout name. frame_skip: sub-steps per action (only the last frame is returned).
        max_step: largest move per sub-step (arena units). radius: the disk's radius (arena units).
    ``pos`` is the centre (x, y) in arena units: the proprioception.
    """

    def __init__(self, world="wall", size=64, max_step=0.02, frame_skip=5, radius=0.05, seed=0):
        if world not in LAYOUTS:
            raise ValueError(f"unknown world {world!r}; expected one of {WORLDS}")
        self.walls = np.array(LAYOUTS[world], dtype=np.float32)  # (n_walls, 4)
        self.size, self.max_step, self.frame_skip, self.radius = size, max_step, frame_skip, radius
        self.rng = np.random.default_rng(seed)
        centres = (np.arange(size) + 0.5) / size  # pixel centres in arena units
        self.background = np.zeros((size, size, 3), dtype=np.float32)
        for x0, y0, x1, y1 in self.walls:
            inside = ((centres[None, :] >= x0) & (centres[None, :] < x1)) & (
                (centres[:, None] >= y0) & (centres[:, None] < y1)
            )
            self.background[inside] = WALL_COLOUR
        self.reset()

    def collides(self, p: np.ndarray) -> bool:
        """True when a disk at p = (x, y) overlaps any wall rectangle."""
        nearest = np.clip(p[None, :], self.walls[:, :2], self.walls[:, 2:])  # closest wall point (n, 2)
        return bool((((nearest - p[None, :]) ** 2).sum(1) < self.radius**2).any())

    def sample_free(self) -> np.ndarray:
        """A uniformly random position (x, y) where the disk touches no wall."""
        while True:
            p = self.rng.uniform(0.0, 1.0, size=2)
            if not self.collides(p):
                return p

    def reset(self, pos=None) -> np.ndarray:
        """Place the agent at ``pos`` (or a random free position); return the first frame."""
        self.pos = self.sample_free() if pos is None else np.asarray(pos, dtype=np.float64).copy()
        return self.render()

    def step(self, action) -> np.ndarray:
        """Hold a continuous action (dx, dy) in [-1, 1]^2 for ``frame_skip`` sub-steps; return the frame."""
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (2,) or not np.all(np.isfinite(a)) or np.abs(a).max() > 1.0:
            raise ValueError(f"action must be (dx, dy) with values in [-1, 1], got {action!r}")
        move = a * self.max_step
        for _ in range(self.frame_skip):
            for candidate in (self.pos + move, self.pos + [move[0], 0], self.pos + [0, move[1]]):
                if not self.collides(candidate):  # full move, else slide along x, else along y, else stay
                    self.pos = candidate
                    break
        return self.render()

    def render(self) -> np.ndarray:
        """The current frame (size, size, 3) uint8."""
        cx, cy = self.pos * self.size - 0.5  # centre in pixel coordinates
        disc = soft_disc(self.size, cx, cy, self.radius * self.size)[..., None]
        return np.clip(np.rint(self.background * (1 - disc) + AGENT_COLOUR * disc), 0, 255).astype(np.uint8)


def random_actions(rng: np.random.Generator, n: int, keep: float = 0.6) -> np.ndarray:
    """``n`` random actions (n, 2) float32 in [-1, 1]; each repeats the previous one with probability
    ``keep``, so that trajectories travel further than a pure random walk (and cross the door)."""
    acts = rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
    for t in range(1, n):
        if rng.random() < keep:
            acts[t] = acts[t - 1]
    return acts


def make_trajectories(world: str, n: int, length: int, seed: int, quiet: bool = True) -> dict:
    """Simulate ``n`` random-action trajectories of ``length`` kept frames.

    Returns:
        {"frames": (N, T, 64, 64, 3) uint8, "actions": (N, T-1, 2) float32 - action t leads from frame t
         to frame t+1, "proprio": (N, T, 2) float32 the agent's (x, y) in arena units}
    """
    env, rng = PointMassRoom(world, seed=seed), np.random.default_rng(seed + 1)
    frames = np.empty((n, length, 64, 64, 3), dtype=np.uint8)
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
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **data)
    tmp.replace(path)  # atomic: a crash mid-write never leaves a half-written cache
    return data


def make_tasks(world: str, n: int, seed: int, min_dist: float = 0.3) -> np.ndarray:
    """``n`` goal-reaching tasks: (n, 2, 2) float, [start (x, y), goal (x, y)] at least ``min_dist`` apart."""
    env, tasks = PointMassRoom(world, seed=seed), []
    while len(tasks) < n:
        start, goal = env.sample_free(), env.sample_free()
        if np.linalg.norm(start - goal) >= min_dist:
            tasks.append((start, goal))
    return np.array(tasks)
