"""The two action-driven worlds of chapter 3 (gymnasium environments) and their cached datasets.

Copied from chapter 1 (1.video-encoder-decoder/data_utils.py): ``soft_disc``, ``ToroidalDot``,
``PointMassRoom`` and ``locate_object``, so that this chapter stands alone. New here: both worlds speak
gymnasium's interface (``reset(seed=...)``, ``step``, ``render``), random-action trajectories generated
by a loop over ``env.step`` that also record the true positions, a cache for them as a Hugging Face
``datasets.Dataset`` (Arrow files under data/), a reader for a learner's own dataset, and a position
error.

- ``dot``: ``ToroidalDot.small(two_d=True)``: a white dot (radius 1.5 px) on a 64x64 torus; 5 discrete
  actions (0 stay, 1 left, 2 right, 3 up, 4 down) move it 2 px; both axes wrap.
- ``wall``: ``PointMassRoom("wall")``: an orange disk in two grey rooms joined by a door; a continuous
  action (dx, dy) in [-1, 1]^2 moves it by up to 0.05 of the arena (3.2 px) unless a wall is in the way.

Shape key: N trajectories, T frames per trajectory, H/W frame height/width (64), A action dims.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium import spaces
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


class ToroidalDot(gym.Env):
    """The 64x64 two-dimensional toroidal dot (chapter 1's ``ToroidalDot.small(two_d=True)``), as a
    gymnasium environment.

    Observation: the frame (64, 64, 3) uint8. Action: ``Discrete(5)``: 0 stay, 1 left, 2 right, 3 up,
    4 down; a move is ``step_px`` = 2 px and both axes wrap. ``info["pos"]``: the dot's true (x, y) in
    pixels, for measuring only (no model reads it). Reward 0, never terminated: a world to imagine in,
    not a task. ``reset(seed=..., options={"pos": (x, y)})`` may place the dot.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]])  # (dx, dy) per action, y points down

    def __init__(self, size=64, radius=1.5, step_px=2, render_mode: str = "rgb_array"):
        self.size, self.radius, self.step_px, self.render_mode = size, radius, step_px, render_mode
        self.observation_space = spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.action_space = spaces.Discrete(N_ACTIONS)
        self.pos = np.full(2, size // 2)  # (x, y) until the first reset

    def _info(self) -> dict:
        return {"pos": self.pos.astype(np.float32)}

    def reset(self, *, seed=None, options=None):
        """Put the dot at a random integer (x, y) (or at ``options["pos"]``); return (frame, info)."""
        super().reset(seed=seed)  # seeds self.np_random when a seed is given
        pos = (options or {}).get("pos")
        self.pos = (
            self.np_random.integers(0, self.size, size=2) if pos is None else np.asarray(pos).astype(np.int64)
        )
        return self.render(), self._info()

    def step(self, action):
        """Apply a discrete action in [0, 5): (frame (size, size, 3) uint8, 0.0, False, False, info)."""
        if not (isinstance(action, (int, np.integer)) and 0 <= action < N_ACTIONS):
            raise ValueError(f"action must be an int in [0, {N_ACTIONS}), got {action!r}")
        self.pos = (self.pos + self.MOVES[action] * self.step_px) % self.size
        return self.render(), 0.0, False, False, self._info()

    def render(self) -> np.ndarray:
        """The current frame: (size, size, 3) uint8."""
        disc = soft_disc(self.size, *self.pos, self.radius, wrap=True)
        return to_uint8(np.repeat(disc[..., None] * 255.0, 3, axis=-1))


# Walls as axis-aligned rectangles (x0, y0, x1, y1) in arena units [0, 1]^2: a dividing wall with a door.
WALL_LAYOUT = [(0, 0, 1, 0.03), (0, 0.97, 1, 1), (0, 0, 0.03, 1), (0.97, 0, 1, 1)]
WALL_LAYOUT += [(0.47, 0.03, 0.53, 0.40), (0.47, 0.60, 0.53, 0.97)]


class PointMassRoom(gym.Env):
    """Chapter 1's point mass in the ``wall`` layout, pushed by continuous actions, as a gymnasium
    environment.

    Observation: the frame (64, 64, 3) uint8. Action: ``Box(-1, 1, (2,))``, a push (dx, dy) that moves
    the agent by ``action * max_step`` (arena units) unless the disk would enter a wall; then it slides
    along x or y if it can, or stays. ``info["pos"]``: the agent's true centre (x, y) in pixels, for
    measuring only. Reward 0, never terminated. ``reset(seed=..., options={"pos": (x, y) px})`` may
    place the agent.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, size=64, max_step=0.05, radius=0.05, render_mode: str = "rgb_array"):
        self.walls = np.array(WALL_LAYOUT, dtype=np.float32)  # (n_walls, 4)
        self.size, self.max_step, self.radius, self.render_mode = size, max_step, radius, render_mode
        self.observation_space = spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        centres = (np.arange(size) + 0.5) / size  # pixel centres in arena units
        self.background = np.zeros((size, size, 3), dtype=np.float32)
        for x0, y0, x1, y1 in self.walls:
            inside = ((centres[None, :] >= x0) & (centres[None, :] < x1)) & (
                (centres[:, None] >= y0) & (centres[:, None] < y1)
            )
            self.background[inside] = WALL_COLOUR
        self.pos = np.array([0.25, 0.5])  # (x, y) in arena units until the first reset: the left room

    def collides(self, p: np.ndarray) -> bool:
        """True when a disk at p = (x, y) overlaps any wall rectangle."""
        nearest = np.clip(p[None, :], self.walls[:, :2], self.walls[:, 2:])  # closest wall point (n, 2)
        return bool((((nearest - p[None, :]) ** 2).sum(1) < self.radius**2).any())

    def _info(self) -> dict:
        return {"pos": self.pixel_pos.astype(np.float32)}

    def reset(self, *, seed=None, options=None):
        """Place the agent at a random free position (or at ``options["pos"]`` px); return (frame, info)."""
        super().reset(seed=seed)
        pos = (options or {}).get("pos")
        if pos is not None:
            self.pos = (np.asarray(pos, dtype=np.float64) + 0.5) / self.size
            return self.render(), self._info()
        while True:
            p = self.np_random.uniform(0.0, 1.0, size=2)
            if not self.collides(p):
                self.pos = p
                return self.render(), self._info()

    def step(self, action):
        """Apply a push (dx, dy) in [-1, 1]^2: (frame, 0.0, False, False, info)."""
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (2,) or not np.all(np.isfinite(a)) or np.abs(a).max() > 1.0:
            raise ValueError(f"action must be (dx, dy) with values in [-1, 1], got {action!r}")
        move = a * self.max_step
        for candidate in (self.pos + move, self.pos + [move[0], 0], self.pos + [0, move[1]]):
            if not self.collides(candidate):  # full move, else slide along x, else along y, else stay
                self.pos = candidate
                break
        return self.render(), 0.0, False, False, self._info()

    @property
    def pixel_pos(self) -> np.ndarray:
        """The agent's centre (x, y) in pixel coordinates (the same frame as ``locate_object``)."""
        return self.pos * self.size - 0.5

    def render(self) -> np.ndarray:
        """The current frame (size, size, 3) uint8."""
        disc = soft_disc(self.size, *self.pixel_pos, self.radius * self.size)[..., None]
        return to_uint8(self.background * (1 - disc) + AGENT_COLOUR * disc)


def make_env(world: str) -> gym.Env:
    """A fresh simulator of ``world`` ("dot" or "wall"); call ``reset(seed=...)`` before using it."""
    if world == "dot":
        return ToroidalDot()
    if world == "wall":
        return PointMassRoom()
    raise ValueError(f"unknown world {world!r}; expected one of {WORLDS}")


def random_actions(world: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random actions: (n,) int64 in [0, 5) for the dot, (n, 2) float32 in [-1, 1] for the wall."""
    if world == "dot":
        return rng.integers(0, N_ACTIONS, size=n)
    return rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)


def make_trajectories(world: str, n: int, length: int, seed: int, quiet: bool = True) -> dict:
    """Simulate ``n`` random-action trajectories of ``length`` frames with a loop over ``env.step``.

    Returns:
        {"frames": (N, T, 64, 64, 3) uint8, "actions": (N, T-1) int64 or (N, T-1, 2) float32 - action t
         leads from frame t to frame t+1, "positions": (N, T, 2) float32 true (x, y) in pixels}
    """
    env, rng = make_env(world), np.random.default_rng(seed + 1)
    frames = np.empty((n, length, 64, 64, 3), dtype=np.uint8)
    positions = np.empty((n, length, 2), dtype=np.float32)
    actions = np.stack([random_actions(world, rng, length - 1) for _ in range(n)])
    # One seeded reset whose start is thrown away: the simulator of the runs measured in this README and
    # NOTES drew a start when it was built, and drawing it here too keeps every dataset byte-identical.
    env.reset(seed=seed)
    for i in tqdm(range(n), desc=f"simulating {world} (seed {seed})", disable=quiet):
        frames[i, 0], info = env.reset()  # the next start from the same generator
        positions[i, 0] = info["pos"]
        for t in range(1, length):
            frames[i, t], _, _, _, info = env.step(actions[i, t - 1])
            positions[i, t] = info["pos"]
    return {"frames": frames, "actions": actions, "positions": positions}


def trajectory_features(length: int, action_shape: tuple):
    """The typed columns of a trajectory dataset: one row per trajectory of ``length`` frames.

    ``action_shape`` is one trajectory's actions: (T-1,) integers (the dot) or (T-1, A) floats (the wall).
    """
    import datasets  # imported here: it is slow to import and only needed for the cache

    if len(action_shape) == 1:
        actions = datasets.Sequence(datasets.Value("int64"), length=length - 1)
    else:
        actions = datasets.Array2D((length - 1, action_shape[1]), "float32")
    return datasets.Features(
        {
            "frames": datasets.Array4D((length, 64, 64, 3), "uint8"),
            "actions": actions,
            "positions": datasets.Array2D((length, 2), "float32"),
        }
    )


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


def load_trajectories(
    world: str, n: int, length: int, seed: int, quiet: bool = False, data_dir: Path | None = None
) -> dict:
    """``make_trajectories`` generated once per (world, n, length, seed), saved as a Hugging Face dataset
    (Arrow files) under ``data_dir`` (default: this chapter's data/), and loaded (memory-mapped) from
    there afterwards. Returns the same dict of numpy arrays as ``make_trajectories``."""
    import datasets

    key = json.dumps({"world": world, "n": n, "length": length, "seed": seed, "v": 1})
    path = Path(data_dir or DATA_DIR) / f"{world}_{hashlib.sha1(key.encode()).hexdigest()[:12]}"
    if not path.exists():
        data = make_trajectories(world, n, length, seed, quiet=quiet)
        features = trajectory_features(length, data["actions"].shape[1:])
        ds = datasets.Dataset.from_dict({k: list(v) for k, v in data.items()}, features=features)
        tmp = path.with_name(path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)  # left over from a run that was stopped mid-write
        ds.save_to_disk(str(tmp))
        tmp.replace(path)  # atomic: a crash mid-write never leaves a half-written cache
        return data
    ds = datasets.load_from_disk(str(path))
    return {k: column(ds, k) for k in ("frames", "actions", "positions")}


def load_own_dataset(path, min_frames: int) -> dict:
    """A learner's own trajectories: a ``datasets.Dataset`` saved with ``save_to_disk`` (README: Run it).

    Schema, one row per episode of T frames (T the same for every row, T >= ``min_frames``):
        "frames": (T, 64, 64, 3) uint8 (e.g. ``Array4D``), "actions": (T-1,) integers >= 0 (a menu of
        moves) or (T-1, A) floats in [-1, 1] (pushes); action t leads from frame t to frame t+1.
    Returns {"frames": (N, T, 64, 64, 3) uint8, "actions": (N, T-1) int64 or (N, T-1, A) float32,
    "spec": how the actions enter a model, {"kind": "discrete" | "continuous", "n_actions", "action_dim"}}.
    Raises ValueError with one line that says what does not fit.
    """
    import datasets

    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"no such folder: {path}")
    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as e:  # datasets raises several types for a folder it cannot read
        raise ValueError(f"{path} is not a dataset written by save_to_disk ({type(e).__name__})") from None
    if not isinstance(ds, datasets.Dataset):
        raise ValueError(f"{path} holds several splits; save one Dataset (e.g. ds['train'].save_to_disk)")
    missing = sorted({"frames", "actions"} - set(ds.column_names))
    if missing or len(ds) == 0:
        raise ValueError(f"{path} needs the columns 'frames' and 'actions' and at least one row; it has "
                         f"{ds.column_names} and {len(ds)} rows")  # fmt: skip
    leaf = {}
    for name in ("frames", "actions"):
        f = ds.features[name]
        while hasattr(f, "feature"):
            f = f.feature
        leaf[name] = getattr(f, "dtype", type(f).__name__)
    if leaf["frames"] != "uint8":
        raise ValueError(f"frames must be uint8 (T, 64, 64, 3) per episode, stored as {leaf['frames']}")
    frames = column(ds, "frames")
    if not isinstance(frames, np.ndarray) or frames.ndim != 5 or frames.shape[2:] != (64, 64, 3):
        got = frames.shape[1:] if isinstance(frames, np.ndarray) else "episodes of different shapes"
        raise ValueError(f"frames must be (T, 64, 64, 3) per episode with one T for all; got {got}")
    t = frames.shape[1]
    if t < min_frames:
        raise ValueError(f"episodes have {t} frames; the model needs at least {min_frames} (--context + 1)")
    discrete = np.issubdtype(np.dtype(leaf["actions"]), np.integer)
    actions = ds.select_columns(["actions"]).with_format("numpy", dtype=np.int64 if discrete else np.float32)
    actions = actions[:]["actions"]
    want = f"(T-1,) = ({t - 1},) integers >= 0 or (T-1, A) = ({t - 1}, A) floats in [-1, 1]"
    if not isinstance(actions, np.ndarray) or actions.shape[:2] != (len(frames), t - 1):
        got = actions.shape[1:] if isinstance(actions, np.ndarray) else "rows of different shapes"
        raise ValueError(f"actions must be {want} per episode; got {got}")
    if discrete and (actions.ndim != 2 or actions.min() < 0):
        raise ValueError(f"actions must be {want} per episode; got integers of shape {actions.shape[1:]}")
    if not discrete and (actions.ndim != 3 or not np.isfinite(actions).all() or np.abs(actions).max() > 1):
        lo, hi = actions.min(), actions.max()
        raise ValueError(f"actions must be {want} per episode (scale pushes to [-1, 1]); got floats of "
                         f"shape {actions.shape[1:]} in [{lo:.3g}, {hi:.3g}]")  # fmt: skip
    spec = {"kind": "discrete" if discrete else "continuous", "n_actions": N_ACTIONS, "action_dim": 2}
    if discrete:
        spec["n_actions"] = int(actions.max()) + 1  # one embedding per action the data holds
    else:
        spec["action_dim"] = actions.shape[-1]
    return {"frames": frames, "actions": actions, "spec": spec}


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
