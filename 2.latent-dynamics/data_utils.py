"""Bouncing-balls videos for chapter 2: the world as a gymnasium env, a cached video dataset, a ball tracker.

The simulator is chapter 1's ``BouncingBalls`` (copied, so this chapter stands alone): 1-3 coloured
balls at constant speed bouncing elastically off the walls of a 64x64 frame, a passive
``gymnasium.Env`` (its one action lets a time step pass). Every ball in a video has a different colour,
which lets us find each ball again in a predicted frame by its colour.

The videos are simulated once by a loop over ``env.reset``/``env.step`` and cached as a Hugging Face
``datasets.Dataset`` under data/ (``load_videos``); your own video goes into the same schema
(video_folder.py).

Shape key: N videos, T time steps, H/W height/width (64), K balls.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from tqdm import tqdm

DATA_DIR = Path(__file__).parent / "data"  # the default; train.py and validate.py pass <--out>/data
BALL_COLOURS = np.array(
    [[255, 60, 60], [60, 220, 60], [70, 110, 255], [250, 220, 50], [60, 220, 230], [230, 70, 230]],
    dtype=np.float32,
)


def soft_disc(size: int, cx: float, cy: float, radius: float) -> np.ndarray:
    """An anti-aliased disc as a (size, size) float32 mask in [0, 1] (1 inside, a 1-pixel soft edge)."""
    coords = np.arange(size, dtype=np.float32)
    dist = np.sqrt((coords[None, :] - cx) ** 2 + (coords[:, None] - cy) ** 2)  # (H, W)
    return np.clip(radius + 0.5 - dist, 0.0, 1.0)


class BouncingBalls(gym.Env):
    """1-3 coloured balls moving at constant speed with elastic walls: a *passive* gymnasium environment.

    Nothing an agent does changes the balls, so the action space is ``Discrete(1)``: the one action 0
    means "let one time step pass". Observation: the frame (size, size, 3) uint8. Reward 0, and an episode
    never ends by itself (the data generator decides its length). ``info`` holds the simulator's state for
    evaluation, never for a model: "pos" (K, 2) and "vel" (K, 2) in pixels as (x, y), "colour" (K,) the
    palette index of each ball, "radius" (K,).

    Args:
        size: frame side in pixels.
        max_balls: the number of balls is drawn from 1..max_balls at each reset.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, size=64, max_balls=3, render_mode="rgb_array"):
        self.size, self.max_balls, self.render_mode = size, max_balls, render_mode
        self.action_space = spaces.Discrete(1)
        self.observation_space = spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.pos = self.vel = np.zeros((0, 2))  # (K, 2) each; reset() draws the balls
        self.radius, self.colour_idx = np.zeros(0), np.zeros(0, dtype=np.int64)

    def _info(self) -> dict:
        """Fresh copies every call: a caller may keep (and change) what an env returns."""
        state = {"pos": self.pos, "vel": self.vel, "colour": self.colour_idx, "radius": self.radius}
        return {k: v.copy() for k, v in state.items()}

    def reset(self, *, seed=None, options=None):
        """Draw new balls from the env's generator (seeded by ``seed``); return (frame, info)."""
        super().reset(seed=seed)
        rng = self.np_random  # the draws below, in this order, define the cached datasets: do not reorder
        n = int(rng.integers(1, self.max_balls + 1))
        self.radius = rng.uniform(3.0, 5.0, size=n)  # (K,)
        self.colour_idx = rng.choice(len(BALL_COLOURS), size=n, replace=False)  # (K,)
        lo, hi = self.radius, self.size - 1 - self.radius
        self.pos = rng.uniform(lo[:, None], hi[:, None], size=(n, 2))  # (K, 2) as (x, y)
        angle = rng.uniform(0, 2 * np.pi, size=n)
        speed = rng.uniform(1.0, 2.5, size=n)
        self.vel = np.stack([np.cos(angle), np.sin(angle)], axis=1) * speed[:, None]  # (K, 2)
        return self.render(), self._info()

    def step(self, action=0):
        """Advance one time step (reflecting off walls); the only action is 0.
        Returns (frame, reward 0, terminated False, truncated False, info)."""
        if not (isinstance(action, (int, np.integer)) and action == 0):
            raise ValueError(f"the balls are passive: the only action is 0, got {action!r}")
        self.pos = self.pos + self.vel
        lo, hi = self.radius[:, None], self.size - 1 - self.radius[:, None]  # (K, 1)
        # Elastic wall: mirror the overshoot back inside and flip that velocity component.
        below, above = self.pos < lo, self.pos > hi
        self.pos = np.where(below, 2 * lo - self.pos, np.where(above, 2 * hi - self.pos, self.pos))
        self.vel = np.where(below | above, -self.vel, self.vel)
        return self.render(), 0.0, False, False, self._info()

    def render(self) -> np.ndarray:
        """The current frame: (size, size, 3) uint8; overlapping balls take the brighter channel."""
        img = np.zeros((self.size, self.size, 3), dtype=np.float32)
        for (x, y), r, c in zip(self.pos, self.radius, BALL_COLOURS[self.colour_idx], strict=True):
            img = np.maximum(img, soft_disc(self.size, x, y, r)[..., None] * c)
        return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def seeded_balls(seed: int) -> BouncingBalls:
    """A BouncingBalls env whose generator is seeded with ``seed``, ready for its first recorded reset.

    The one seeded ``reset`` here is thrown away: the simulator of the published runs drew a set of balls
    when it was built, and drawing it here too keeps every dataset byte-identical to the one the
    checkpoints were trained on (tests/test_data.py pins the checksums)."""
    env = BouncingBalls()
    env.reset(seed=seed)
    return env


def make_videos(n: int, length: int, seed: int, quiet: bool = True) -> np.ndarray:
    """Simulate ``n`` videos of ``length`` frames with a loop over ``env.reset``/``env.step``.

    Returns (N, T, 64, 64, 3) uint8."""
    env = seeded_balls(seed)
    videos = np.empty((n, length, 64, 64, 3), dtype=np.uint8)
    for i in tqdm(range(n), desc=f"simulating videos (seed {seed})", disable=quiet):
        videos[i, 0], _ = env.reset()  # new balls from the same seeded generator
        for t in range(1, length):
            videos[i, t], *_ = env.step(0)
    return videos


def video_features(length: int, size: int = 64):
    """The dataset schema every video source of this chapter shares (the simulated balls and your own
    video), one row per clip: ``frames`` (length, size, size, 3) uint8 RGB, ``source`` int64 (which
    simulated video, or which of your files, the clip was cut from)."""
    import datasets  # imported here: it is slow to import and only the cache needs it

    return datasets.Features(
        {"frames": datasets.Array4D((length, size, size, 3), "uint8"), "source": datasets.Value("int64")}
    )


def to_dataset(data: dict, features, chunk: int = 250):
    """Numpy columns of equal length -> an in-memory ``datasets.Dataset`` with ``features``.

    Converted ``chunk`` rows at a time (chapter 1's recipe): ``Dataset.from_dict`` on all 2,000 default
    videos (393 MB of pixels) at once would hold several copies of them in RAM; in chunks of 250 videos
    (49 MB) the peak stays near the pixels' own size."""
    import datasets

    n = len(next(iter(data.values())))
    parts = [
        datasets.Dataset.from_dict({k: v[i : i + chunk] for k, v in data.items()}, features=features)
        for i in range(0, n, chunk)
    ]
    return datasets.concatenate_datasets(parts)


def save_dataset(ds, path: Path) -> None:
    """``ds.save_to_disk`` into a temporary folder, then rename it to ``path``: atomic, so a crash
    mid-write never leaves a half-written cache that a later run would trust."""
    import datasets

    datasets.disable_progress_bars()  # our own tqdm bar already showed the generation
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    ds.save_to_disk(str(tmp))
    tmp.replace(path)


def column(ds, name: str) -> np.ndarray:
    """One column of a ``datasets.Dataset`` as one numpy array, in the dtype and shape it is stored in.

    Read as Arrow (``with_format("arrow")``), one array per record batch: the values under an
    ``Array2D``-``Array5D`` or fixed-length ``Sequence`` lie in one flat buffer, which numpy views without
    a copy, and one ``np.concatenate`` joins the batches. ``with_format("numpy")`` gives the same array but
    builds a numpy array per row first (and widens integers to int64 unless told the dtype); columns whose
    rows differ in shape still go that way.

    Chapter 1's (1.video-encoder-decoder/data_utils.py), copied so this chapter stands alone.

    Args:
        ds: a dataset (e.g. from ``load_from_disk``); name: one of its columns.
    Returns:
        (len(ds), *row shape) array, e.g. frames (N, T, H, W, 3) uint8, in RAM (not a view of the file).
    """
    import pyarrow as pa

    feature, shape = ds.features[name], ()
    while hasattr(feature, "feature"):  # Sequence(Value(...), length=k) -> Value(...)
        shape, feature = shape + (feature.length,), feature.feature
    shape += tuple(getattr(feature, "shape", ()))  # Array2D-5D: the shape of one row
    dtype = np.dtype(feature.dtype)
    chunks = ds.with_format("arrow")[name].chunks  # one Arrow array per record batch, memory-mapped
    if any(d is None or d < 0 for d in shape) or any(c.null_count for c in chunks):
        return ds.select_columns([name]).with_format("numpy", dtype=dtype)[:][name]  # ragged: per row
    parts = []
    for values in chunks:
        values = values.storage if isinstance(values, pa.ExtensionArray) else values
        while pa.types.is_list(values.type) or pa.types.is_fixed_size_list(values.type):
            values = values.flatten()  # the values of the lists, without their offsets: no copy
        parts.append(values.to_numpy(zero_copy_only=False))  # a view, except for bool
    return np.concatenate(parts or [np.empty(0, dtype)]).astype(dtype, copy=False).reshape(len(ds), *shape)


def load_videos(n: int, length: int, seed: int, quiet: bool = False, data_dir: Path | None = None):
    """``make_videos`` as a Hugging Face ``datasets.Dataset``: simulated once per (n, length, seed), saved
    with ``save_to_disk`` under ``data_dir`` (default: data/) in a folder named by its parameters, and
    memory-mapped with ``load_from_disk`` afterwards.

    Returns:
        a Dataset of n rows, columns frames (length, 64, 64, 3) uint8 and source int64 (``video_features``);
        read all frames with ``video_array`` (numpy), or rows with ``ds.with_format("torch")``.
    """
    import datasets

    # "v" counts changes to the generated data (not to the file format): bump it if the simulator changes
    key = json.dumps({"n": n, "length": length, "seed": seed, "v": 1})
    name = f"balls_n{n}_len{length}_seed{seed}_{hashlib.sha1(key.encode()).hexdigest()[:8]}"
    path = Path(data_dir or DATA_DIR) / name
    if not path.exists():
        data = {"frames": make_videos(n, length, seed, quiet=quiet), "source": np.arange(n, dtype=np.int64)}
        save_dataset(to_dataset(data, video_features(length)), path)
    return datasets.load_from_disk(str(path))


def video_array(ds) -> np.ndarray:
    """The ``frames`` column of a video dataset as one numpy array (N, T, 64, 64, 3) uint8 (``column``)."""
    return column(ds, "frames")


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
