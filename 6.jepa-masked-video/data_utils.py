"""The two worlds of chapter 6 and their cached clip datasets.

Copied so that this chapter stands alone: ``BouncingBalls`` and ``soft_disc`` from chapter 2
(2.latent-dynamics/data_utils.py), ``PointMassRoom`` from chapter 3 (3.action-conditioning/data_utils.py).
New here: an ``open`` room layout (only the outer walls), an action repeat, the balls' motion direction
as a probe label (8 classes, never shown to the pre-training), and a cache for both datasets.

- balls: 1-3 coloured balls at constant speed bouncing off the walls of a 64x64 frame (passive video).
- room: an orange agent disk in a 64x64 arena, ``open`` or ``wall`` (two rooms joined by a door); an
  action (dx, dy) in [-1, 1]^2 is held for ``ACTION_REPEAT`` simulator steps of up to 0.05 arena each.

Shape key: N clips, T frames, H/W frame height/width (64), K balls, A action dims (2).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

DATA_DIR = Path(__file__).parent / "data"
SIZE = 64
ACTION_REPEAT = 2  # one action = 2 simulator steps, so one step moves the agent up to 6.4 px
N_DIRECTIONS = 8  # the probe's label: the ball's motion direction in 8 sectors of 45 degrees
BALL_COLOURS = np.array(
    [[255, 60, 60], [60, 220, 60], [70, 110, 255], [250, 220, 50], [60, 220, 230], [230, 70, 230]],
    dtype=np.float32,
)
AGENT_COLOUR = np.array([255, 140, 20], dtype=np.float32)
WALL_COLOUR = np.array([120, 120, 120], dtype=np.float32)
BORDER = [(0, 0, 1, 0.03), (0, 0.97, 1, 1), (0, 0, 0.03, 1), (0.97, 0, 1, 1)]
LAYOUTS = {"open": BORDER, "wall": BORDER + [(0.47, 0.03, 0.53, 0.40), (0.47, 0.60, 0.53, 0.97)]}


def soft_disc(size: int, cx: float, cy: float, radius: float) -> np.ndarray:
    """An anti-aliased disc as a (size, size) float32 mask in [0, 1] (1 inside, a 1-pixel soft edge)."""
    coords = np.arange(size, dtype=np.float32)
    dist = np.sqrt((coords[None, :] - cx) ** 2 + (coords[:, None] - cy) ** 2)  # (H, W)
    return np.clip(radius + 0.5 - dist, 0.0, 1.0)


class BouncingBalls:
    """1-``max_balls`` coloured balls moving at constant speed with elastic walls (chapter 2's)."""

    def __init__(self, size=SIZE, seed=0, max_balls=3):
        self.size, self.max_balls = size, max_balls
        self.rng = np.random.default_rng(seed)
        self.reset()

    def reset(self) -> np.ndarray:
        """Draw new balls; return the first frame (size, size, 3) uint8."""
        n = int(self.rng.integers(1, self.max_balls + 1))
        self.radius = self.rng.uniform(3.0, 5.0, size=n)  # (K,)
        self.colour_idx = self.rng.choice(len(BALL_COLOURS), size=n, replace=False)  # (K,)
        lo, hi = self.radius, self.size - 1 - self.radius
        self.pos = self.rng.uniform(lo[:, None], hi[:, None], size=(n, 2))  # (K, 2) as (x, y)
        angle = self.rng.uniform(0, 2 * np.pi, size=n)
        speed = self.rng.uniform(1.0, 2.5, size=n)
        self.vel = np.stack([np.cos(angle), np.sin(angle)], axis=1) * speed[:, None]  # (K, 2)
        return self.render()

    def step(self) -> np.ndarray:
        """Advance one time step (reflecting off walls) and return the new frame."""
        self.pos = self.pos + self.vel
        lo, hi = self.radius[:, None], self.size - 1 - self.radius[:, None]  # (K, 1)
        below, above = self.pos < lo, self.pos > hi  # mirror the overshoot back inside, flip the velocity
        self.pos = np.where(below, 2 * lo - self.pos, np.where(above, 2 * hi - self.pos, self.pos))
        self.vel = np.where(below | above, -self.vel, self.vel)
        return self.render()

    def render(self) -> np.ndarray:
        """The current frame: (size, size, 3) uint8; overlapping balls take the brighter channel."""
        img = np.zeros((self.size, self.size, 3), dtype=np.float32)
        for (x, y), r, c in zip(self.pos, self.radius, BALL_COLOURS[self.colour_idx], strict=True):
            img = np.maximum(img, soft_disc(self.size, x, y, r)[..., None] * c)
        return np.clip(np.rint(img), 0, 255).astype(np.uint8)


class PointMassRoom:
    """Chapter 3's point mass, in the ``open`` or ``wall`` layout, pushed by actions (dx, dy) in [-1, 1]^2.

    A simulator step moves the agent by ``action * max_step`` (arena units) unless the disk would enter a
    wall; then it slides along x or y if it can, or stays. ``step`` repeats the action ``repeat`` times.
    """

    def __init__(self, layout="open", size=SIZE, max_step=0.05, radius=0.05, repeat=ACTION_REPEAT, seed=0):
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; expected one of {list(LAYOUTS)}")
        self.walls = np.array(LAYOUTS[layout], dtype=np.float32)  # (n_walls, 4) as x0, y0, x1, y1
        self.size, self.max_step, self.radius, self.repeat = size, max_step, radius, repeat
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

    def reset(self, pos=None) -> np.ndarray:
        """Place the agent at ``pos`` (arena units) or at a random free position; return the frame."""
        while pos is None:
            p = self.rng.uniform(0.0, 1.0, size=2)
            pos = None if self.collides(p) else p
        self.pos = np.asarray(pos, dtype=np.float64)
        return self.render()

    def step(self, action) -> np.ndarray:
        """Apply a continuous action (dx, dy) in [-1, 1]^2 ``repeat`` times and return the new frame."""
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (2,) or not np.all(np.isfinite(a)) or np.abs(a).max() > 1.0:
            raise ValueError(f"action must be (dx, dy) with values in [-1, 1], got {action!r}")
        move = a * self.max_step
        for _ in range(self.repeat):
            for candidate in (self.pos + move, self.pos + [move[0], 0], self.pos + [0, move[1]]):
                if not self.collides(candidate):  # full move, else slide along x, else along y, else stay
                    self.pos = candidate
                    break
        return self.render()

    def render(self) -> np.ndarray:
        """The current frame (size, size, 3) uint8."""
        disc = soft_disc(self.size, *(self.pos * self.size - 0.5), self.radius * self.size)[..., None]
        return np.clip(np.rint(self.background * (1 - disc) + AGENT_COLOUR * disc), 0, 255).astype(np.uint8)


def direction_label(vel: np.ndarray) -> int:
    """The sector (0..7, 45 degrees each, 0 = moving right) of a velocity (vx, vy)."""
    angle = np.arctan2(vel[1], vel[0]) % (2 * np.pi)
    return int(np.floor(angle / (2 * np.pi / N_DIRECTIONS) + 0.5)) % N_DIRECTIONS


def make_ball_clips(n: int, length: int, seed: int, max_balls: int = 3, quiet: bool = True) -> dict:
    """``n`` bouncing-balls clips. The label is the first ball's direction at the clip's middle frame.

    Returns:
        {"frames": (N, T, 64, 64, 3) uint8, "labels": (N,) int64 in [0, 8)}
    """
    env = BouncingBalls(seed=seed, max_balls=max_balls)
    frames = np.empty((n, length, SIZE, SIZE, 3), dtype=np.uint8)
    labels = np.empty(n, dtype=np.int64)
    for i in tqdm(range(n), desc=f"simulating balls (seed {seed})", disable=quiet):
        frames[i, 0] = env.reset()
        for t in range(1, length):
            frames[i, t] = env.step()
            if t == length // 2:
                labels[i] = direction_label(env.vel[0])
    return {"frames": frames, "labels": labels}


def make_room_trajectories(n: int, length: int, seed: int, layout: str = "open", quiet: bool = True) -> dict:
    """``n`` random-action point-mass trajectories of ``length`` frames.

    Returns:
        {"frames": (N, T, 64, 64, 3) uint8, "actions": (N, T, 2) float32 - action t leads from frame t to
         t+1 (the last one is never taken), "proprio": (N, T, 2) float32 agent (x, y) in arena units}
    """
    env, rng = PointMassRoom(layout, seed=seed), np.random.default_rng(seed + 1)
    frames = np.empty((n, length, SIZE, SIZE, 3), dtype=np.uint8)
    proprio = np.empty((n, length, 2), dtype=np.float32)
    actions = rng.uniform(-1, 1, size=(n, length, 2)).astype(np.float32)
    for i in tqdm(range(n), desc=f"simulating {layout} room (seed {seed})", disable=quiet):
        frames[i, 0], proprio[i, 0] = env.reset(), env.pos
        for t in range(1, length):
            frames[i, t], proprio[i, t] = env.step(actions[i, t - 1]), env.pos
    return {"frames": frames, "actions": actions, "proprio": proprio}


def cached(kind: str, **params) -> dict:
    """``make_ball_clips`` (kind "balls") or ``make_room_trajectories`` ("room"), generated once per set of
    parameters and cached under data/ as .npz (written atomically)."""
    key = json.dumps({"kind": kind, **params, "v": 1}, sort_keys=True)
    path = DATA_DIR / f"{kind}_{hashlib.sha1(key.encode()).hexdigest()[:12]}.npz"
    if path.exists():
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    data = make_ball_clips(**params, quiet=False) if kind == "balls" else make_room_trajectories(**params)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    # one temporary file per process: under torchrun every rank may build the same cache at once
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **data)
    tmp.replace(path)  # atomic: a crash mid-write never leaves a half-written cache
    return data


def to_float(frames) -> torch.Tensor:
    """uint8 frames (..., H, W, 3) (numpy or torch) -> a float tensor (..., 3, H, W) in [0, 1]."""
    x = torch.as_tensor(frames)
    return x.movedim(-1, -3).float() / 255.0
