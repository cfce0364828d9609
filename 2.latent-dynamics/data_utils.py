"""Bouncing-balls videos for chapter 2: simulation, a cached video dataset, and a ball tracker.

The simulator is chapter 1's ``BouncingBalls`` (copied, so this chapter stands alone): 1-3 coloured
balls at constant speed bouncing elastically off the walls of a 64x64 frame. Every ball in a video has
a different colour, which lets us find each ball again in a predicted frame by its colour.

Shape key: N videos, T time steps, H/W height/width (64), K balls.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

DATA_DIR = Path(__file__).parent / "data"
BALL_COLOURS = np.array(
    [[255, 60, 60], [60, 220, 60], [70, 110, 255], [250, 220, 50], [60, 220, 230], [230, 70, 230]],
    dtype=np.float32,
)


def soft_disc(size: int, cx: float, cy: float, radius: float) -> np.ndarray:
    """An anti-aliased disc as a (size, size) float32 mask in [0, 1] (1 inside, a 1-pixel soft edge)."""
    coords = np.arange(size, dtype=np.float32)
    dist = np.sqrt((coords[None, :] - cx) ** 2 + (coords[:, None] - cy) ** 2)  # (H, W)
    return np.clip(radius + 0.5 - dist, 0.0, 1.0)


class BouncingBalls:
    """1-3 coloured balls moving at constant speed with elastic walls; passive video (no actions).

    Args:
        size: frame side in pixels.
        seed: seeds the number of balls, their colours, radii, positions and velocities.
        max_balls: the number of balls is drawn from 1..max_balls at each reset.
    """

    def __init__(self, size=64, seed=0, max_balls=3):
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
        # Elastic wall: mirror the overshoot back inside and flip that velocity component.
        below, above = self.pos < lo, self.pos > hi
        self.pos = np.where(below, 2 * lo - self.pos, np.where(above, 2 * hi - self.pos, self.pos))
        self.vel = np.where(below | above, -self.vel, self.vel)
        return self.render()

    def render(self) -> np.ndarray:
        """The current frame: (size, size, 3) uint8; overlapping balls take the brighter channel."""
        img = np.zeros((self.size, self.size, 3), dtype=np.float32)
        for (x, y), r, c in zip(self.pos, self.radius, BALL_COLOURS[self.colour_idx], strict=True):
            img = np.maximum(img, soft_disc(self.size, x, y, r)[..., None] * c)
        return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def make_videos(n: int, length: int, seed: int, quiet: bool = True) -> np.ndarray:
    """Simulate ``n`` videos of ``length`` frames. Returns (N, T, 64, 64, 3) uint8."""
    env = BouncingBalls(seed=seed)
    videos = np.empty((n, length, 64, 64, 3), dtype=np.uint8)
    for i in tqdm(range(n), desc=f"simulating videos (seed {seed})", disable=quiet):
        videos[i, 0] = env.reset()
        for t in range(1, length):
            videos[i, t] = env.step()
    return videos


def load_videos(n: int, length: int, seed: int, quiet: bool = False) -> np.ndarray:
    """``make_videos`` generated once per (n, length, seed) and cached under data/ as .npz."""
    key = json.dumps({"n": n, "length": length, "seed": seed, "v": 1})
    path = DATA_DIR / f"balls_{hashlib.sha1(key.encode()).hexdigest()[:12]}.npz"
    if path.exists():
        with np.load(path) as f:
            return f["videos"]
    videos = make_videos(n, length, seed, quiet=quiet)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, videos=videos)
    tmp.replace(path)  # atomic: a crash mid-write never leaves a half-written cache
    return videos


def locate_balls(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Find each palette colour's ball in a batch of frames.

    A pixel belongs to colour c when it is bright and closer (in RGB direction) to c than to any other
    palette colour; the ball's position is the brightness-weighted centroid of its pixels.

    Args:
        frames: (N, H, W, 3) uint8 or float in [0, 1].
    Returns:
        centroids: (N, 6, 2) (x, y) per palette colour; found: (N, 6) bool (at least ~2 pixels' worth).
    """
    x = frames.astype(np.float32) / 255.0 if frames.dtype == np.uint8 else frames.astype(np.float32)
    n, h, w, _ = x.shape
    brightness = x.max(-1)  # (N, H, W)
    palette = BALL_COLOURS / np.linalg.norm(BALL_COLOURS, axis=1, keepdims=True)  # (6, 3) unit colours
    direction = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-6)  # (N, H, W, 3)
    nearest = (direction @ palette.T).argmax(-1)  # (N, H, W) index of the closest palette colour
    centroids = np.zeros((n, len(BALL_COLOURS), 2), dtype=np.float32)
    found = np.zeros((n, len(BALL_COLOURS)), dtype=bool)
    for c in range(len(BALL_COLOURS)):
        weight = np.where((nearest == c) & (brightness > 0.3), brightness, 0.0)  # (N, H, W)
        mass = weight.sum((1, 2))
        found[:, c] = mass > 2.0
        safe = np.maximum(mass, 1e-8)
        centroids[:, c, 0] = (weight.sum(1) @ np.arange(w)) / safe
        centroids[:, c, 1] = (weight.sum(2) @ np.arange(h)) / safe
    return centroids, found


def ball_error(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Mean distance (px) between each true ball and the same-coloured ball in the prediction.

    A ball missing from the prediction counts as the distance from its true position to the frame
    centre, so a model that erases balls is not rewarded. Returns (N,) errors, one per frame pair.
    """
    c_pred, f_pred = locate_balls(pred)
    c_true, f_true = locate_balls(truth)
    c_pred = np.where(f_pred[..., None], c_pred, (truth.shape[1] - 1) / 2)
    dist = np.linalg.norm(c_pred - c_true, axis=-1)  # (N, 6)
    return (dist * f_true).sum(1) / np.maximum(f_true.sum(1), 1)
