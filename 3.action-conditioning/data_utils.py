"""The two action-driven worlds of chapter 3 and their cached trajectory datasets.

Copied from chapter 1 (1.video-encoder-decoder/data_utils.py): ``soft_disc``, ``ToroidalDot``,
``PointMassRoom`` and ``locate_object``, so that this chapter stands alone. New here: random-action
trajectories that also record the true positions, a cache for them, and a position error.

- ``dot``: ``ToroidalDot.small(two_d=True)``: a white dot (radius 1.5 px) on a 64x64 torus; 5 discrete
  actions (0 stay, 1 left, 2 right, 3 up, 4 down) move it 2 px; both axes wrap.
- ``wall``: ``PointMassRoom("wall")``: an orange disk in two grey rooms joined by a door; a continuous
  action (dx, dy) in [-1, 1]^2 moves it by up to 0.05 of the arena (3.2 px) unless a wall is in the way.

Shape key: N trajectories, T frames per trajectory, H/W frame height/width (64), A action dims.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

DATA_DIR = Path(__file__).parent / "data"
WORLDS = ("dot", "wall")
N_ACTIONS = 5  # the dot world's discrete actions
ACTION_NAMES = ("stay", "left", "right", "up", "down")
AGENT_COLOUR = np.array([255, 140, 20], dtype=np.float32)  # orange: red high, blue low
WALL_COLOUR = np.array([120, 120, 120], dtype=np.float32)  # grey: red == blue


def soft_disc(size: int, cx: float, cy: float, radius: float, wrap: bool = False) -> np.ndarray:
    """An anti-aliased disc as a (size, size) float32 mask in [0, 1]; ``wrap`` measures on the torus."""
    coords = np.arange(size, dtype=np.float32)
    dx, dy = coords[None, :] - cx, coords[:, None] - cy  # (1, W), (H, 1)
    if wrap:  # shortest signed distance on a ring of length `size`
        dx = (dx + size / 2) % size - size / 2
        dy = (dy + size / 2) % size - size / 2
    return np.clip(radius + 0.5 - np.sqrt(dx**2 + dy**2), 0.0, 1.0)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Round a float image in [0, 255] to uint8."""
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


class ToroidalDot:
    """The 64x64 two-dimensional toroidal dot (chapter 1's ``ToroidalDot.small(two_d=True)``).

    Args:
        seed: seeds the reset positions. ``pos`` is the dot's (x, y) in pixels.
    """

    MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]])  # (dx, dy) per action, y points down

    def __init__(self, size=64, radius=1.5, step_px=2, seed=0):
        self.size, self.radius, self.step_px, self.n_actions = size, radius, step_px, N_ACTIONS
        self.rng = np.random.default_rng(seed)
        self.reset()

    def reset(self) -> np.ndarray:
        """Put the dot at a random integer (x, y); return the first frame (size, size, 3) uint8."""
        self.pos = self.rng.integers(0, self.size, size=2)  # (x, y)
        return self.render()

    def step(self, action: int) -> np.ndarray:
        """Apply a discrete action in [0, 5) and return the new frame (size, size, 3) uint8."""
        if not (isinstance(action, (int, np.integer)) and 0 <= action < self.n_actions):
            raise ValueError(f"action must be an int in [0, {self.n_actions}), got {action!r}")
        self.pos = (self.pos + self.MOVES[action] * self.step_px) % self.size
        return self.render()

    def render(self) -> np.ndarray:
        """The current frame: (size, size, 3) uint8."""
        disc = soft_disc(self.size, *self.pos, self.radius, wrap=True)
        return to_uint8(np.repeat(disc[..., None] * 255.0, 3, axis=-1))


# Walls as axis-aligned rectangles (x0, y0, x1, y1) in arena units [0, 1]^2: a dividing wall with a door.
WALL_LAYOUT = [(0, 0, 1, 0.03), (0, 0.97, 1, 1), (0, 0, 0.03, 1), (0.97, 0, 1, 1)]
WALL_LAYOUT += [(0.47, 0.03, 0.53, 0.40), (0.47, 0.60, 0.53, 0.97)]


class PointMassRoom:
    """Chapter 1's point mass in the ``wall`` layout, pushed by continuous actions (dx, dy) in [-1, 1]^2.

    An action moves the agent by ``action * max_step`` (arena units) unless the disk would enter a wall;
    then it slides along x or y if it can, or stays. ``pixel_pos`` is the centre in pixels.
    """

    def __init__(self, size=64, max_step=0.05, radius=0.05, seed=0):
        self.walls = np.array(WALL_LAYOUT, dtype=np.float32)  # (n_walls, 4)
        self.size, self.max_step, self.radius = size, max_step, radius
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

    def reset(self) -> np.ndarray:
        """Place the agent at a random free position; return the first frame."""
        while True:
            p = self.rng.uniform(0.0, 1.0, size=2)
            if not self.collides(p):
                self.pos = p
                return self.render()

    def step(self, action) -> np.ndarray:
        """Apply a continuous action (dx, dy) in [-1, 1]^2 and return the new frame."""
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (2,) or not np.all(np.isfinite(a)) or np.abs(a).max() > 1.0:
            raise ValueError(f"action must be (dx, dy) with values in [-1, 1], got {action!r}")
        move = a * self.max_step
        for candidate in (self.pos + move, self.pos + [move[0], 0], self.pos + [0, move[1]]):
            if not self.collides(candidate):  # full move, else slide along x, else along y, else stay
                self.pos = candidate
                break
        return self.render()

    @property
    def pixel_pos(self) -> np.ndarray:
        """The agent's centre (x, y) in pixel coordinates (the same frame as ``locate_object``)."""
        return self.pos * self.size - 0.5

    def render(self) -> np.ndarray:
        """The current frame (size, size, 3) uint8."""
        disc = soft_disc(self.size, *self.pixel_pos, self.radius * self.size)[..., None]
        return to_uint8(self.background * (1 - disc) + AGENT_COLOUR * disc)


def make_env(world: str, seed: int):
    """A fresh simulator of ``world`` ("dot" or "wall")."""
    if world == "dot":
        return ToroidalDot(seed=seed)
    if world == "wall":
        return PointMassRoom(seed=seed)
    raise ValueError(f"unknown world {world!r}; expected one of {WORLDS}")


def env_position(env) -> np.ndarray:
    """The true object position (x, y) in pixels."""
    return env.pos.astype(np.float32) if isinstance(env, ToroidalDot) else env.pixel_pos.astype(np.float32)


def random_actions(world: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random actions: (n,) int64 in [0, 5) for the dot, (n, 2) float32 in [-1, 1] for the wall."""
    if world == "dot":
        return rng.integers(0, N_ACTIONS, size=n)
    return rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)


def make_trajectories(world: str, n: int, length: int, seed: int, quiet: bool = True) -> dict:
    """Simulate ``n`` random-action trajectories of ``length`` frames.

    Returns:
        {"frames": (N, T, 64, 64, 3) uint8, "actions": (N, T-1) int64 or (N, T-1, 2) float32 - action t
         leads from frame t to frame t+1, "positions": (N, T, 2) float32 true (x, y) in pixels}
    """
    env, rng = make_env(world, seed), np.random.default_rng(seed + 1)
    frames = np.empty((n, length, 64, 64, 3), dtype=np.uint8)
    positions = np.empty((n, length, 2), dtype=np.float32)
    actions = np.stack([random_actions(world, rng, length - 1) for _ in range(n)])
    for i in tqdm(range(n), desc=f"simulating {world} (seed {seed})", disable=quiet):
        frames[i, 0], positions[i, 0] = env.reset(), env_position(env)
        for t in range(1, length):
            frames[i, t] = env.step(actions[i, t - 1])
            positions[i, t] = env_position(env)
    return {"frames": frames, "actions": actions, "positions": positions}


def load_trajectories(world: str, n: int, length: int, seed: int, quiet: bool = False) -> dict:
    """``make_trajectories`` generated once per (world, n, length, seed) and cached under data/ as .npz."""
    key = json.dumps({"world": world, "n": n, "length": length, "seed": seed, "v": 1})
    path = DATA_DIR / f"{world}_{hashlib.sha1(key.encode()).hexdigest()[:12]}.npz"
    if path.exists():
        with np.load(path) as f:
            return {k: f[k] for k in ("frames", "actions", "positions")}
    data = make_trajectories(world, n, length, seed, quiet=quiet)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **data)  # the frames are mostly black: they compress ~50x
    tmp.replace(path)  # atomic: a crash mid-write never leaves a half-written cache
    return data


def locate_object(frames: np.ndarray, world: str) -> tuple[np.ndarray, np.ndarray]:
    """Find the dot or the agent in a batch of frames (chapter 1's tracker).

    Args:
        frames: (N, H, W, 3) float in [0, 1] (a decoded frame) or uint8 (a rendered frame).
    Returns:
        centroid: (N, 2) intensity-weighted (x, y) in pixels (a circular mean on the torus for the dot);
        found: (N,) bool, False when the object vanished (less than one pixel's worth of it).
    """
    x = frames.astype(np.float32) / 255.0 if frames.dtype == np.uint8 else frames.astype(np.float32)
    n, h, w, _ = x.shape
    if world == "dot":
        weight = x.mean(-1)  # white dot: brightness
    elif world == "wall":
        weight = x[..., 0] - x[..., 2]  # the agent is orange (red >> blue); grey walls have red == blue
    else:
        raise ValueError(f"unknown world {world!r}")
    weight = np.where(weight > 0.25, weight, 0.0)  # (N, H, W): ignore faint noise
    mass = weight.sum((1, 2))  # (N,)
    safe = np.maximum(mass, 1e-8)
    if world == "dot":  # circular mean: average unit vectors of the angle 2*pi*x/W
        ang_x, ang_y = 2 * np.pi * np.arange(w) / w, 2 * np.pi * np.arange(h) / h
        wx, wy = weight.sum(1), weight.sum(2)  # (N, W), (N, H) marginals
        cx = np.arctan2(wx @ np.sin(ang_x), wx @ np.cos(ang_x)) % (2 * np.pi) * w / (2 * np.pi)
        cy = np.arctan2(wy @ np.sin(ang_y), wy @ np.cos(ang_y)) % (2 * np.pi) * h / (2 * np.pi)
    else:
        cx = (weight.sum(1) @ np.arange(w)) / safe
        cy = (weight.sum(2) @ np.arange(h)) / safe
    return np.stack([cx, cy], axis=1), mass > 1.0


def displacement(a: np.ndarray, b: np.ndarray, world: str, size: int = 64) -> np.ndarray:
    """b - a for positions (..., 2) in pixels; on the torus (dot) the shortest signed way round."""
    d = b - a
    return (d + size / 2) % size - size / 2 if world == "dot" else d


def position_error(frames: np.ndarray, true_pos: np.ndarray, world: str) -> tuple[np.ndarray, np.ndarray]:
    """Distance (px) from the object located in ``frames`` (N, H, W, 3) to ``true_pos`` (N, 2).

    Where the object vanished the tracker falls back to the frame centre, so erasing the object is not
    rewarded; on the 64-px torus that fallback costs about 24 px on average (the mean distance from a
    random point to the centre). Returns (N,) errors (torus distance for the dot) and (N,) bool
    ``vanished``: True where the fallback was used, so a caller can say how often it fired.
    """
    pos, found = locate_object(frames, world)
    pos = np.where(found[:, None], pos, (frames.shape[1] - 1) / 2)
    return np.linalg.norm(displacement(true_pos, pos, world, frames.shape[1]), axis=-1), ~found
