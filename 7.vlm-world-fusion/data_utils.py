"""The point-mass room of chapter 7 (`wall`), its discrete action words, and the question-answer data.

The room is chapter 5's ``PointMassRoom`` (5.dino-predictor/data_utils.py, itself chapter 3's and 1's),
copied so that this chapter stands alone, and rendered at 32x32 so that a language model can read it in
16 image tokens. It is a ``gymnasium.Env`` (``reset(seed=...)``, ``step``, ``render``), the data is made
by a loop over ``env.reset``/``env.step``, and both datasets are cached as Hugging Face ``datasets``
(Arrow files under data/, typed columns; ``column`` and ``to_dataset`` are chapter 1's).

New here: five action *words* of a fixed size (stay, left, right, up, down: each moves the agent by 0.2
of the arena, four fifths of a grid cell, unless a wall stops it), a 4x4 grid of cells that names where
the agent is ("row1 col2"), and templated questions about the present and the future.

- ``wall``: two rooms joined by a door at mid-height (DINO-WM's Wall task in small). The wall sits on
  the border between grid columns 1 and 2, so "right" from the left room is stopped unless the agent
  is in the door: the future is not simply "present plus the arrows".

Shape key: N samples or trajectories, T frames, H/W frame height/width (32), K actions per question.
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
SIZE = 32  # frame side in pixels
AGENT_COLOUR = np.array([255, 140, 20], dtype=np.float32)  # orange
WALL_COLOUR = np.array([120, 120, 120], dtype=np.float32)  # grey
BORDER = [(0, 0, 1, 0.03), (0, 0.97, 1, 1), (0, 0, 0.03, 1), (0.97, 0, 1, 1)]
# Walls as axis-aligned rectangles (x0, y0, x1, y1) in arena units [0, 1]^2 (y points down).
WALLS = BORDER + [(0.47, 0.03, 0.53, 0.40), (0.47, 0.60, 0.53, 0.97)]  # door: y in [0.40, 0.60]
ACTIONS = ("stay", "left", "right", "up", "down")  # word i is action index i
MOVES = np.array([(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)], dtype=np.float64)  # (5, 2) direction
GRID = 4  # the answer names one of GRID x GRID cells
MARGIN = 0.03  # ~1 px: questions whose answer lies closer than this to a cell border are not asked


def soft_disc(size: int, cx: float, cy: float, radius: float) -> np.ndarray:
    """An anti-aliased disc as a (size, size) float32 mask in [0, 1] (chapter 1's)."""
    coords = np.arange(size, dtype=np.float32)
    dx, dy = coords[None, :] - cx, coords[:, None] - cy  # (1, W), (H, 1)
    return np.clip(radius + 0.5 - np.sqrt(dx**2 + dy**2), 0.0, 1.0)


class PointMassRoom(gym.Env):
    """An orange disk in a room with a wall and a door, moved by action words of a fixed size, as a
    gymnasium environment.

    Observation: the frame (size, size, 3) uint8. Action: ``Discrete(5)``, an index into ACTIONS
    (0 stay, 1 left, 2 right, 3 up, 4 down), applied for ``frame_skip`` sub-steps of ``max_step`` (arena
    units), so one word moves 5 x 0.04 = 0.2 unless a wall stops it. ``info["pos"]``: the disk's centre
    (x, y) in arena units, float64: the proprioception (the datasets store it as float32). Reward 0,
    never terminated: a world to ask questions about, not a task. ``reset(seed=..., options={"pos":
    (x, y)})`` may place the agent; without it the agent starts at a random free position.

    Args:
        size: frame side in pixels. max_step: move per sub-step (arena units). frame_skip: sub-steps per
        action word. radius: the disk's radius (arena units).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 5}

    def __init__(self, size=SIZE, max_step=0.04, frame_skip=5, radius=0.05, render_mode: str = "rgb_array"):
        self.walls = np.array(WALLS, dtype=np.float32)  # (n_walls, 4)
        self.size, self.max_step, self.frame_skip, self.radius = size, max_step, frame_skip, radius
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.action_space = spaces.Discrete(len(ACTIONS))
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

    def sample_free(self) -> np.ndarray:
        """A uniformly random position (x, y) where the disk touches no wall (from the env's generator)."""
        while True:
            p = self.np_random.uniform(0.0, 1.0, size=2)
            if not self.collides(p):
                return p

    def _info(self) -> dict:
        return {"pos": self.pos.copy()}

    def reset(self, *, seed=None, options=None):
        """Place the agent at ``options["pos"]`` or at a random free position; return (frame, info)."""
        super().reset(seed=seed)  # seeds self.np_random when a seed is given
        pos = (options or {}).get("pos")
        self.pos = self.sample_free() if pos is None else np.asarray(pos, dtype=np.float64).copy()
        return self.render(), self._info()

    def step(self, action):
        """Apply action word ``action`` for ``frame_skip`` sub-steps: (frame, 0.0, False, False, info).
        A sub-step that would enter a wall is not taken (walls stop you)."""
        if not (isinstance(action, int | np.integer) and 0 <= action < len(ACTIONS)):
            raise ValueError(f"action must be an index in [0, {len(ACTIONS)}), got {action!r}")
        move = MOVES[action] * self.max_step
        for _ in range(self.frame_skip):
            if not self.collides(self.pos + move):
                self.pos = self.pos + move
        return self.render(), 0.0, False, False, self._info()

    def render(self) -> np.ndarray:
        """The current frame (size, size, 3) uint8."""
        cx, cy = self.pos * self.size - 0.5  # centre in pixel coordinates
        disc = soft_disc(self.size, cx, cy, self.radius * self.size)[..., None]
        return np.clip(np.rint(self.background * (1 - disc) + AGENT_COLOUR * disc), 0, 255).astype(np.uint8)


def cell_of(pos: np.ndarray) -> np.ndarray:
    """Grid cell (row, col) of positions (..., 2) = (x, y): (..., 2) int64, each in [0, GRID)."""
    rc = np.floor(np.asarray(pos)[..., ::-1] * GRID).astype(np.int64)  # (y, x) -> (row, col)
    return np.clip(rc, 0, GRID - 1)


def near_border(pos: np.ndarray, margin: float = MARGIN) -> np.ndarray:
    """True where a position (..., 2) lies within ``margin`` of a grid line (its cell is ambiguous)."""
    frac = np.asarray(pos) * GRID
    return (np.abs(frac - np.rint(frac)) < margin * GRID).any(-1)


def answer_text(rc) -> str:
    """The answer words for a cell (row, col): 'row1 col2'."""
    return f"row{int(rc[0])} col{int(rc[1])}"


def question_text(kind: str, actions=()) -> str:
    """The question words: kind 'present' ("where is the agent ?"), 'before' (a present question that
    mentions actions, used only in pre-training) or 'future' ("where will the agent be after ... ?")."""
    words = " ".join(ACTIONS[int(a)] for a in actions)
    if kind == "present":
        return "where is the agent ?"
    if kind == "before":
        return f"where is the agent before {words} ?"
    if kind == "future":
        return f"where will the agent be after {words} ?"
    raise ValueError(f"unknown question kind {kind!r}")


def make_trajectories(n: int, length: int, seed: int, quiet: bool = True) -> dict:
    """``n`` trajectories of random action words ('stay' included), for the world model: a loop over
    ``env.reset``/``env.step``.

    Returns:
        {"frames": (N, T, 32, 32, 3) uint8, "actions": (N, T-1) int64 - action t leads from frame t to
         t+1, "proprio": (N, T, 2) float32 the agent's (x, y) in arena units}
    """
    env, rng = PointMassRoom(), np.random.default_rng(seed + 1)
    frames = np.empty((n, length, SIZE, SIZE, 3), dtype=np.uint8)
    proprio = np.empty((n, length, 2), dtype=np.float32)
    actions = rng.integers(0, len(ACTIONS), size=(n, length - 1))
    # One seeded reset whose start is thrown away: the simulator of the published runs drew a start when
    # it was built, and drawing it here too keeps every dataset byte-identical to the one they used.
    env.reset(seed=seed)
    for i in tqdm(range(n), desc=f"simulating trajectories (seed {seed})", disable=quiet):
        frames[i, 0], info = env.reset()  # the next start from the same generator
        proprio[i, 0] = info["pos"]
        for t in range(1, length):
            frames[i, t], _, _, _, info = env.step(int(actions[i, t - 1]))
            proprio[i, t] = info["pos"]
    return {"frames": frames, "actions": actions, "proprio": proprio}


def make_questions(n: int, k: int, seed: int, quiet: bool = True) -> dict:
    """``n`` question samples: a start frame, ``k`` moving action words, the present and future cells.

    Each sample is one episode: ``env.reset()`` (a random start), then ``k`` ``env.step`` calls. Starts
    and ends closer than MARGIN to a grid line are re-drawn, so every answer is readable.
    Returns:
        {"frames": (N, 32, 32, 3) uint8, "actions": (N, K) int64 (never 'stay'), "start": (N, 2) and
         "end": (N, 2) float32 positions, "present": (N, 2) and "future": (N, 2) int64 cells (row, col),
         "blocked": (N,) bool - a wall stopped at least one move}
    """
    env, rng = PointMassRoom(), np.random.default_rng(seed + 1)
    env.reset(seed=seed)  # thrown away, as in make_trajectories: keeps the published data byte-identical
    out = {key: [] for key in ("frames", "actions", "start", "end", "blocked")}
    with tqdm(total=n, desc=f"asking questions (seed {seed})", disable=quiet) as bar:
        while len(out["frames"]) < n:
            frame, info = env.reset()
            start, acts = info["pos"], rng.integers(1, len(ACTIONS), size=k)  # moving words only
            if near_border(start):
                continue
            for a in acts:
                _, _, _, _, info = env.step(int(a))
            free_end = start + MOVES[acts].sum(0) * env.max_step * env.frame_skip
            if near_border(info["pos"]):
                continue
            blocked = not np.allclose(info["pos"], free_end)
            for key, v in zip(out, (frame, acts, start, info["pos"], blocked), strict=True):
                out[key].append(v)
            bar.update(1)
    d = {key: np.array(v) for key, v in out.items()}
    d["start"], d["end"] = d["start"].astype(np.float32), d["end"].astype(np.float32)
    d["present"], d["future"] = cell_of(d["start"]), cell_of(d["end"])
    return d


def trajectory_features(length: int):
    """The typed columns of the trajectory dataset: one row per trajectory of ``length`` frames."""
    import datasets  # imported here: it is slow to import and only the cache needs it

    return datasets.Features(
        {
            "frames": datasets.Array4D((length, SIZE, SIZE, 3), "uint8"),
            "actions": datasets.Sequence(datasets.Value("int64"), length=length - 1),
            "proprio": datasets.Array2D((length, 2), "float32"),
        }
    )


_PAIRS = {"start": "float32", "end": "float32", "present": "int64", "future": "int64"}  # (2,) each


def question_features(k: int):
    """The typed columns of the question dataset: one row per question (a start frame, k words)."""
    import datasets

    pair = {name: datasets.Sequence(datasets.Value(dtype), length=2) for name, dtype in _PAIRS.items()}
    return datasets.Features(
        {
            "frames": datasets.Array3D((SIZE, SIZE, 3), "uint8"),
            "actions": datasets.Sequence(datasets.Value("int64"), length=k),
            **pair,
            "blocked": datasets.Value("bool"),
        }
    )


def to_dataset(data: dict, features, chunk: int = 1000):
    """Numpy columns of equal length -> an in-memory ``datasets.Dataset`` with ``features``.

    Converted ``chunk`` rows at a time (chapter 1's): ``Dataset.from_dict`` on a large set at once
    peaks at several times the pixels' size in RAM; in chunks the peak stays near the pixels' own size."""
    import datasets

    n = len(next(iter(data.values())))
    parts = [
        datasets.Dataset.from_dict({k: v[i : i + chunk] for k, v in data.items()}, features=features)
        for i in range(0, n, chunk)
    ]
    return datasets.concatenate_datasets(parts)


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


def _cached(name: str, params: dict, make, features, data_dir: Path) -> dict:
    """Return make() generated once per ``params``, saved with ``save_to_disk`` under ``data_dir`` in a
    folder named by a hash of the parameters, and loaded with ``load_from_disk`` (memory-mapped Arrow)
    afterwards. The write is atomic: a temporary folder, then a rename, so a crash mid-write never leaves
    a half-written cache that a later run would trust."""
    import datasets

    key = json.dumps(params | {"v": 1}, sort_keys=True)  # "v" counts changes to the generated data
    path = Path(data_dir) / f"{name}_{hashlib.sha1(key.encode()).hexdigest()[:12]}"
    if path.exists():
        ds = datasets.load_from_disk(str(path))
        return {k: column(ds, k) for k in ds.column_names}
    data = make()
    datasets.disable_progress_bars()  # our own tqdm bar already showed the generation
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    to_dataset(data, features).save_to_disk(str(tmp))
    tmp.replace(path)
    return data


def load_trajectories(n: int, length: int, seed: int, quiet: bool = False, data_dir: Path = DATA_DIR) -> dict:
    """``make_trajectories`` cached as a Hugging Face dataset under ``data_dir`` (default: data/)."""
    params = {"n": n, "length": length, "seed": seed}
    make = lambda: make_trajectories(n, length, seed, quiet)  # noqa: E731 - a function of no arguments
    return _cached("traj", params, make, trajectory_features(length), data_dir)


def load_questions(n: int, k: int, seed: int, quiet: bool = False, data_dir: Path = DATA_DIR) -> dict:
    """``make_questions`` cached as a Hugging Face dataset under ``data_dir`` (default: data/)."""
    make = lambda: make_questions(n, k, seed, quiet)  # noqa: E731 - a function of no arguments
    return _cached("qa", {"n": n, "k": k, "seed": seed}, make, question_features(k), data_dir)
