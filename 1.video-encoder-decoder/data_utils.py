"""The simulated worlds of the curriculum and the cached frame dataset of chapter 1.

Three worlds, each a ``gymnasium.Env`` (``reset(seed=...)``, ``step``, ``render()``), pure numpy,
deterministic for a seed, whose observations are RGB uint8 frames (H, W, 3):

- ``ToroidalDot``: a white dot on black. The curriculum's original dot: 224x224, radius 2, action 1
  moves the dot 7 px right, x wraps, action 0 stays, random (x, y) at reset. ``ToroidalDot.small()`` is
  the 64x64 variant; ``two_d=True`` gives 5 actions (stay, left, right, up, down) with both axes wrapping.
- ``BouncingBalls``: 1-3 coloured balls at constant speed bouncing elastically off the walls (passive).
- ``PointMassRoom``: an orange agent disk in a walled arena (``wall``: two rooms joined by a door, as in
  DINO-WM's Wall task; ``umaze``), continuous action (dx, dy) in [-1, 1]^2, proprioception (x, y).

The frames the codecs learn from are a Hugging Face ``datasets.Dataset`` simulated once from these envs
and cached under data/ (``load_frames``); your own video goes into the same schema (video_folder.py).

Later chapters copy this file (never import it) and add what they need.
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

DATA_DIR = Path(__file__).parent / "data"
WORLDS = ("dot", "balls", "wall")  # the three worlds of the chapter-1 frame mix, in label order
BALL_COLOURS = np.array(
    [[255, 60, 60], [60, 220, 60], [70, 110, 255], [250, 220, 50], [60, 220, 230], [230, 70, 230]],
    dtype=np.float32,
)
AGENT_COLOUR = np.array([255, 140, 20], dtype=np.float32)  # orange: red high, blue low
WALL_COLOUR = np.array([120, 120, 120], dtype=np.float32)  # grey: red == blue


def soft_disc(size: int, cx: float, cy: float, radius: float, wrap: bool = False) -> np.ndarray:
    """Render an anti-aliased disc as a (size, size) float32 mask in [0, 1].

    A pixel's value is clip(radius + 0.5 - distance, 0, 1): 1 inside, a one-pixel soft edge, so a
    sub-pixel move of the centre changes the image (and the centroid can be measured below a pixel).
    ``wrap=True`` measures distance on the torus, so a disc crossing an edge reappears on the other side.
    """
    coords = np.arange(size, dtype=np.float32)
    dx = coords[None, :] - cx  # (1, W)
    dy = coords[:, None] - cy  # (H, 1)
    if wrap:  # shortest signed distance on a ring of length `size`
        dx = (dx + size / 2) % size - size / 2
        dy = (dy + size / 2) % size - size / 2
    dist = np.sqrt(dx**2 + dy**2)  # (H, W)
    return np.clip(radius + 0.5 - dist, 0.0, 1.0)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Round a float image in [0, 255] to uint8."""
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


class ToroidalDot(gym.Env):
    """A white dot on black on a torus, the curriculum's first world, as a gymnasium environment.

    Observation: the frame (size, size, 3) uint8. Action: Discrete(2) (0 stay, 1 right; only x wraps) or,
    with ``two_d``, Discrete(5) (0 stay, 1 left, 2 right, 3 up, 4 down; both axes wrap). Reward 0: the
    chapters learn to predict, not to maximise a reward. ``info["pos"]``: the dot's integer (x, y).

    Args:
        size: frame side in pixels (224 for the original dot, 64 for the small variant).
        radius: dot radius in pixels.
        step_px: how far one move action carries the dot.
        two_d: False -> 2 actions, True -> 5 actions (see above).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    MOVES_2D = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]])  # (dx, dy) per action, y points down

    def __init__(self, size=224, radius=2.0, step_px=7, two_d=False, render_mode="rgb_array"):
        self.size, self.radius, self.step_px, self.two_d = size, radius, step_px, two_d
        self.render_mode = render_mode
        self.n_actions = 5 if two_d else 2
        self.action_space = spaces.Discrete(self.n_actions)
        self.observation_space = spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.pos = np.zeros(2, dtype=np.int64)  # (x, y); reset() draws a random one

    @classmethod
    def small(cls, two_d=False) -> ToroidalDot:
        """The 64x64 variant used by chapters 1-4: radius 1.5 px, a move is 2 px."""
        return cls(size=64, radius=1.5, step_px=2, two_d=two_d)

    def reset(self, *, seed=None, options=None):
        """Put the dot at a random integer (x, y) drawn from the env's generator (seeded by ``seed``)."""
        super().reset(seed=seed)
        self.pos = self.np_random.integers(0, self.size, size=2)  # (x, y)
        return self.render(), {"pos": self.pos.copy()}

    def step(self, action):
        """Apply a discrete action; returns (frame, reward 0, terminated, truncated, info)."""
        if not (isinstance(action, (int, np.integer)) and 0 <= action < self.n_actions):
            raise ValueError(f"action must be an int in [0, {self.n_actions}), got {action!r}")
        move = self.MOVES_2D[action] if self.two_d else np.array([action, 0])
        self.pos = (self.pos + move * self.step_px) % self.size  # the 1-D world never moves y
        return self.render(), 0.0, False, False, {"pos": self.pos.copy()}

    def render(self) -> np.ndarray:
        """The current frame: (size, size, 3) uint8."""
        disc = soft_disc(self.size, *self.pos, self.radius, wrap=True)
        return to_uint8(np.repeat(disc[..., None] * 255.0, 3, axis=-1))


class BouncingBalls(gym.Env):
    """1-3 coloured balls moving at constant speed with elastic walls: a *passive* gymnasium environment.

    Nothing the agent does changes the balls, so the action space is ``Discrete(1)``: the one action 0
    means "let one time step pass". Keeping the gymnasium interface anyway lets every world of the
    curriculum be generated, checked and wrapped the same way. Observation: the frame (size, size, 3)
    uint8; ``info`` holds the balls' positions (n, 2) and velocities (n, 2) in pixels (for evaluation).

    Args:
        size: frame side in pixels.
        max_balls: the number of balls is drawn from 1..max_balls at each reset.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, size=64, max_balls=3, render_mode="rgb_array"):
        self.size, self.max_balls, self.render_mode = size, max_balls, render_mode
        self.action_space = spaces.Discrete(1)
        self.observation_space = spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.pos = self.vel = np.zeros((0, 2))  # (n, 2) each; reset() draws the balls
        self.radius, self.colour = np.zeros(0), np.zeros((0, 3), np.float32)

    def _info(self) -> dict:
        return {"pos": self.pos.copy(), "vel": self.vel.copy()}

    def reset(self, *, seed=None, options=None):
        """Draw new balls from the env's generator (seeded by ``seed``); return (frame, info)."""
        super().reset(seed=seed)
        rng = self.np_random  # these draws, in this order, make the frames the README was measured on
        n = int(rng.integers(1, self.max_balls + 1))
        self.radius = rng.uniform(3.0, 5.0, size=n)  # (n,)
        self.colour = BALL_COLOURS[rng.choice(len(BALL_COLOURS), size=n, replace=False)]  # (n, 3)
        lo, hi = self.radius, self.size - 1 - self.radius
        self.pos = rng.uniform(lo[:, None], hi[:, None], size=(n, 2))  # (n, 2) as (x, y)
        angle = rng.uniform(0, 2 * np.pi, size=n)
        speed = rng.uniform(1.0, 2.5, size=n)
        self.vel = np.stack([np.cos(angle), np.sin(angle)], axis=1) * speed[:, None]  # (n, 2)
        return self.render(), self._info()

    def step(self, action=0):
        """Advance one time step (reflecting off walls); the only action is 0."""
        if not (isinstance(action, (int, np.integer)) and action == 0):
            raise ValueError(f"the balls are passive: the only action is 0, got {action!r}")
        self.pos = self.pos + self.vel
        lo, hi = self.radius[:, None], self.size - 1 - self.radius[:, None]  # (n, 1)
        # Elastic wall: mirror the overshoot back inside and flip that velocity component.
        below, above = self.pos < lo, self.pos > hi
        self.pos = np.where(below, 2 * lo - self.pos, np.where(above, 2 * hi - self.pos, self.pos))
        self.vel = np.where(below | above, -self.vel, self.vel)
        return self.render(), 0.0, False, False, self._info()

    def render(self) -> np.ndarray:
        """The current frame: (size, size, 3) uint8; overlapping balls take the brighter channel."""
        img = np.zeros((self.size, self.size, 3), dtype=np.float32)
        for (x, y), r, c in zip(self.pos, self.radius, self.colour, strict=True):
            img = np.maximum(img, soft_disc(self.size, x, y, r)[..., None] * c)
        return to_uint8(img)


# Walls as axis-aligned rectangles (x0, y0, x1, y1) in arena units [0, 1]^2.
_BORDER = [(0, 0, 1, 0.03), (0, 0.97, 1, 1), (0, 0, 0.03, 1), (0.97, 0, 1, 1)]
LAYOUTS = {
    # two rooms side by side; a door at mid-height in the dividing wall
    "wall": _BORDER + [(0.47, 0.03, 0.53, 0.40), (0.47, 0.60, 0.53, 0.97)],
    # a U-shaped corridor around a central tongue of wall
    "umaze": _BORDER + [(0.30, 0.30, 0.70, 0.70), (0.47, 0.70, 0.53, 0.97)],
}


class PointMassRoom(gym.Env):
    """A point-mass agent (a disk) pushed by continuous actions inside a walled arena (gymnasium env).

    Positions are in arena units [0, 1]^2; an action (dx, dy) in [-1, 1]^2 (``Box``) moves the agent by
    ``action * max_step`` unless that would put the disk inside a wall (then it slides along the wall
    if it can, or stays). Observation: the frame (size, size, 3) uint8. Proprioception, the agent's
    (x, y), is ``info["proprio"]`` (float32). Reward 0.

    Args:
        layout: "wall" or "umaze".
        size: frame side in pixels.
        max_step: the largest move per step, in arena units.
        radius: agent radius in arena units.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, layout="wall", size=64, max_step=0.05, radius=0.05, render_mode="rgb_array"):
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {sorted(LAYOUTS)}, got {layout!r}")
        self.walls = np.array(LAYOUTS[layout], dtype=np.float32)  # (n_walls, 4)
        self.size, self.max_step, self.radius, self.render_mode = size, max_step, radius, render_mode
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.observation_space = spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.background = self._render_walls()
        self.pos = np.full(2, 0.25)  # (x, y); reset() draws a random free one

    def _render_walls(self) -> np.ndarray:
        """The static background (size, size, 3) float32: black floor, grey walls."""
        centres = (np.arange(self.size) + 0.5) / self.size  # pixel centres in arena units
        img = np.zeros((self.size, self.size, 3), dtype=np.float32)
        for x0, y0, x1, y1 in self.walls:
            inside = ((centres[None, :] >= x0) & (centres[None, :] < x1)) & (
                (centres[:, None] >= y0) & (centres[:, None] < y1)
            )
            img[inside] = WALL_COLOUR
        return img

    def collides(self, p: np.ndarray) -> bool:
        """True when a disk at p = (x, y) overlaps any wall rectangle."""
        nearest = np.clip(p[None, :], self.walls[:, :2], self.walls[:, 2:])  # closest wall point (n, 2)
        return bool((((nearest - p[None, :]) ** 2).sum(1) < self.radius**2).any())

    def reset(self, *, seed=None, options=None):
        """Place the agent at a random free position (the env's generator, seeded by ``seed``)."""
        super().reset(seed=seed)
        while True:
            p = self.np_random.uniform(0.0, 1.0, size=2)
            if not self.collides(p):
                self.pos = p
                return self.render(), {"proprio": self.proprio}

    def step(self, action):
        """Apply a continuous action (dx, dy) in [-1, 1]^2; returns (frame, 0, False, False, info)."""
        a = np.asarray(action, dtype=np.float64)  # float64: the datasets were made with float64 moves
        if a.shape != (2,) or not np.all(np.isfinite(a)) or np.abs(a).max() > 1.0:
            raise ValueError(f"action must be (dx, dy) with values in [-1, 1], got {action!r}")
        move = a * self.max_step
        for candidate in (self.pos + move, self.pos + [move[0], 0], self.pos + [0, move[1]]):
            if not self.collides(candidate):  # full move, else slide along x, else along y, else stay
                self.pos = candidate
                break
        return self.render(), 0.0, False, False, {"proprio": self.proprio}

    @property
    def proprio(self) -> np.ndarray:
        """The agent's position (x, y) in arena units, float32."""
        return self.pos.astype(np.float32)

    def render(self) -> np.ndarray:
        """The current frame (size, size, 3) uint8."""
        cx, cy = self.pos * self.size - 0.5  # arena units -> pixel coordinates of the centre
        disc = soft_disc(self.size, cx, cy, self.radius * self.size)[..., None]
        return to_uint8(self.background * (1 - disc) + AGENT_COLOUR * disc)


def make_env(world: str, size: int = 64) -> gym.Env:
    """The env of one world of the chapter-1 mix: "dot" (2-D, 5 actions), "balls" or "wall"."""
    if world == "dot":
        return ToroidalDot(size=size, radius=1.5, step_px=2, two_d=True)
    if world == "balls":
        return BouncingBalls(size=size)
    if world == "wall":
        return PointMassRoom("wall", size=size)
    raise ValueError(f"unknown world {world!r}; expected one of {WORLDS}")


def random_action(world: str, rng: np.random.Generator):
    """A uniformly random action of ``world``, drawn from ``rng`` (the balls take none: no draw)."""
    if world == "dot":
        return int(rng.integers(5))  # stay, left, right, up, down
    if world == "balls":
        return 0  # passive: nothing to choose
    return rng.uniform(-1, 1, size=2)  # (dx, dy), float64 as drawn


def world_frames(
    world: str, n: int, seed: int, size: int = 64, episode_len: int = 10, bar=None
) -> np.ndarray:
    """Collect ``n`` frames of one world from random episodes of ``episode_len`` steps: a loop over
    ``env.reset`` / ``env.step``.

    The env and the actions have two generators, both seeded with ``seed``; the first ``reset(seed=...)``
    only seeds the env and its start is not recorded. The README's numbers were measured on the frames
    this order of random draws makes (tests/test_data.py pins their checksums), so do not reorder it.

    Returns:
        frames: (n, size, size, 3) uint8.
    """
    env = make_env(world, size)
    rng = np.random.default_rng(seed)  # the actions' generator
    env.reset(seed=seed)  # seeds the env's own generator; this first start is not recorded
    frames = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        if i % episode_len == 0:
            frames[i], _ = env.reset()  # a new episode, from the env's seeded generator
        else:
            frames[i], *_ = env.step(random_action(world, rng))
        if bar is not None:
            bar.update(1)
    return frames


def make_frames(n_per_world: int, seed: int, size: int = 64, quiet: bool = True) -> dict:
    """The chapter-1 frame mix, simulated: ``n_per_world`` frames of each world, world w from seed
    ``seed * 100 + w``, so a different ``seed`` gives other episodes (for the dot, with only 4,096 possible
    frames, many of the same frames).

    Returns:
        {"frames": (N, size, size, 3) uint8, "world": (N,) int64 index into WORLDS}, N = 3 * n_per_world.
    """
    frames = []
    with tqdm(total=len(WORLDS) * n_per_world, desc=f"simulating frames (seed {seed})", disable=quiet) as bar:
        for w_idx, world in enumerate(WORLDS):
            frames.append(world_frames(world, n_per_world, seed=seed * 100 + w_idx, size=size, bar=bar))
    world = np.repeat(np.arange(len(WORLDS), dtype=np.int64), n_per_world)  # (N,)
    return {"frames": np.concatenate(frames), "world": world}


def frame_features(size: int = 64):
    """The dataset schema every frame source of this chapter shares (the simulated worlds and your own
    video): ``frames`` RGB (size, size, 3) uint8, ``world`` int64 (which world, or which video file)."""
    import datasets  # imported here: it is slow to import and only the cache needs it

    return datasets.Features(
        {"frames": datasets.Array3D((size, size, 3), "uint8"), "world": datasets.Value("int64")}
    )


def to_dataset(data: dict, features, chunk: int = 1000):
    """Numpy columns of equal length -> an in-memory ``datasets.Dataset`` with ``features``.

    Converted ``chunk`` rows at a time: ``Dataset.from_dict`` on all 18,000 default frames at once
    peaks at ~3 GB of RAM for 221 MB of pixels; in chunks the peak stays near the pixels' own size."""
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


def load_frames(n_per_world: int, seed: int, size: int = 64, data_dir: Path = DATA_DIR, quiet: bool = False):
    """The chapter-1 frame mix as a Hugging Face ``datasets.Dataset``: simulated once (``make_frames``),
    saved with ``save_to_disk`` under ``data_dir`` in a folder named by its parameters, and loaded
    (memory-mapped Arrow, nothing copied into RAM yet) with ``load_from_disk`` afterwards.

    Returns:
        a Dataset with columns frames (size, size, 3) uint8 and world int64 (``frame_features``); read a
        whole column with ``column`` (numpy, see ``as_arrays``), or rows with ``ds.with_format("torch")``.
    """
    import datasets

    # "v" counts changes to the generated data (not to the file format): bump it if the simulators change
    key = json.dumps({"n": n_per_world, "seed": seed, "size": size, "worlds": WORLDS, "v": 1})
    path = Path(data_dir) / f"frames_n{n_per_world}_seed{seed}_{hashlib.sha1(key.encode()).hexdigest()[:8]}"
    if not path.exists():
        data = make_frames(n_per_world, seed, size, quiet=quiet)
        save_dataset(to_dataset(data, frame_features(size)), path)
    return datasets.load_from_disk(str(path))


def as_arrays(ds) -> dict:
    """A frame dataset as numpy: {"frames": (N, H, W, 3) uint8, "world": (N,) int64}, each read whole by
    ``column``."""
    return {"frames": column(ds, "frames"), "world": column(ds, "world")}


def locate_object(frames: np.ndarray, world: str) -> tuple[np.ndarray, np.ndarray]:
    """Find the object (dot, balls, agent) in a batch of frames of one world.

    Args:
        frames: (N, H, W, 3) float in [0, 1] (a reconstruction) or uint8 (a rendered frame).
        world: which world the frames come from; decides what counts as the object.

    Returns:
        centroid: (N, 2) intensity-weighted (x, y) in pixels; for the dot on the torus it is a circular
            mean, so a dot split across an edge is still located in one place.
        found: (N,) bool, False when the object has vanished (less than one pixel's worth of it).
    """
    x = frames.astype(np.float32) / 255.0 if frames.dtype == np.uint8 else frames.astype(np.float32)
    n, h, w, _ = x.shape
    if world == "dot":
        weight = x.mean(-1)  # white dot: brightness
    elif world == "balls":
        weight = x.max(-1)  # any bright colour on black
    elif world == "wall":
        weight = x[..., 0] - x[..., 2]  # the agent is orange (red >> blue); grey walls have red == blue
    else:
        raise ValueError(f"unknown world {world!r}")
    weight = np.where(weight > 0.25, weight, 0.0)  # (N, H, W): ignore faint noise
    mass = weight.sum((1, 2))  # (N,)
    found = mass > 1.0
    safe = np.maximum(mass, 1e-8)
    if world == "dot":  # circular mean on the torus: average unit vectors of the angle 2*pi*x/W
        ang_x = 2 * np.pi * np.arange(w) / w
        ang_y = 2 * np.pi * np.arange(h) / h
        wx, wy = weight.sum(1), weight.sum(2)  # (N, W), (N, H) marginals
        cx = np.arctan2(wx @ np.sin(ang_x), wx @ np.cos(ang_x)) % (2 * np.pi) * w / (2 * np.pi)
        cy = np.arctan2(wy @ np.sin(ang_y), wy @ np.cos(ang_y)) % (2 * np.pi) * h / (2 * np.pi)
    else:
        cx = (weight.sum(1) @ np.arange(w)) / safe  # intensity-weighted centroid
        cy = (weight.sum(2) @ np.arange(h)) / safe
    return np.stack([cx, cy], axis=1), found


def centroid_error(recon: np.ndarray, truth: np.ndarray, world: str) -> tuple[np.ndarray, np.ndarray]:
    """Pixel distance between the object located in ``recon`` and in ``truth``.

    Where the object vanished from the reconstruction, the error is that of guessing the frame centre
    (what you would say if the image told you nothing), so erased objects are not silently skipped.

    Returns:
        err: (N,) pixels (torus distance for the dot); vanished: (N,) bool.
    """
    c_rec, f_rec = locate_object(recon, world)
    c_true, _ = locate_object(truth, world)
    size = truth.shape[1]
    c_rec = np.where(f_rec[:, None], c_rec, (size - 1) / 2)
    d = c_rec - c_true
    if world == "dot":
        d = (d + size / 2) % size - size / 2
    return np.sqrt((d**2).sum(1)), ~f_rec
