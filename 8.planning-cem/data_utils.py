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

Each room is a ``gymnasium.Env`` (``reset(seed=...)``, ``step``, ``render``), the training data is made
by a loop over ``env.reset``/``env.step``, and it is cached as a Hugging Face ``datasets`` folder (Arrow
files under data/, typed columns; ``to_dataset`` and ``column`` are chapter 7's). The planners and the
oracle do not step the env one robot at a time: they move whole batches with ``step_positions``, the
same physics the env's ``step`` calls.

- ``wall``: two rooms joined by a door at mid-height (DINO-WM's Wall task in small).
- ``umaze``: a bar from the left wall to 65 % of the width: the agent must go round it.

Shape key: N trajectories, T frames per trajectory, H/W frame height/width (64), A = 2 action dims,
M positions simulated together.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium import spaces
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


class PointMassRoom(gym.Env):
    """An orange disk pushed by continuous actions in a room with walls (`wall` or `umaze`), as a
    gymnasium environment.

    Observation: the frame (64, 64, 3) uint8. Action: ``Box(-1, 1, (2,))``, a push (dx, dy) held for
    FRAME_SKIP sub-steps of up to MAX_STEP each (``step_positions``: a blocked disk slides along x or y,
    or stays). ``info["pos"]``: the disk's centre (x, y) in arena units, float64: the proprioception
    (the dataset stores it as float32). Reward 0, never terminated: the goal-reaching tasks live in
    ``make_tasks`` and the planners, not in the env. ``reset(seed=..., options={"pos": (x, y)})`` may
    place the agent; without it the agent starts at a uniformly random free position.

    Args:
        world: "wall" or "umaze" (LAYOUTS).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, world: str = "wall", render_mode: str = "rgb_array"):
        if world not in LAYOUTS:
            raise ValueError(f"unknown environment {world!r}; expected one of {WORLDS}")
        self.world, self.render_mode = world, render_mode
        self.walls = np.array(LAYOUTS[world], dtype=np.float64)  # (n_walls, 4)
        self.observation_space = spaces.Box(0, 255, (SIZE, SIZE, 3), np.uint8)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        centres = (np.arange(SIZE) + 0.5) / SIZE  # pixel centres in arena units
        self.background = np.zeros((SIZE, SIZE, 3), dtype=np.float32)
        for x0, y0, x1, y1 in self.walls:
            inside = ((centres[None, :] >= x0) & (centres[None, :] < x1)) & (
                (centres[:, None] >= y0) & (centres[:, None] < y1)
            )
            self.background[inside] = WALL_COLOUR
        self.pos = np.array([0.2, 0.2])  # (x, y) until the first reset: free in both rooms

    def sample_free(self) -> np.ndarray:
        """A uniformly random position (x, y) where the disk touches no wall (from the env's generator,
        ``self.np_random``, which ``reset(seed=...)`` seeds)."""
        while True:
            p = self.np_random.uniform(0.0, 1.0, size=2)
            if not collides(self.walls, p[None])[0]:
                return p

    def _info(self) -> dict:
        return {"pos": self.pos.copy()}  # a copy: the caller may keep it while the agent moves on

    def reset(self, *, seed=None, options=None):
        """Place the agent at ``options["pos"]`` or at a random free position; return (frame, info)."""
        super().reset(seed=seed)  # seeds self.np_random when a seed is given
        pos = (options or {}).get("pos")
        self.pos = self.sample_free() if pos is None else np.asarray(pos, dtype=np.float64).copy()
        return self.render(), self._info()

    def step(self, action):
        """Apply one action (dx, dy) in [-1, 1]^2 (held for FRAME_SKIP sub-steps):
        (frame, 0.0, False, False, info)."""
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (2,) or not np.all(np.isfinite(a)) or np.abs(a).max() > 1.0 + 1e-6:
            raise ValueError(f"action must be (dx, dy) with values in [-1, 1], got {action!r}")
        self.pos = step_positions(self.walls, self.pos[None], a[None])[0]  # the batched physics, M = 1
        return self.render(), 0.0, False, False, self._info()

    def render(self, pos=None) -> np.ndarray:
        """The frame (64, 64, 3) uint8 with the agent where it is, or at ``pos`` (the agent does not move:
        the batched episodes and the pictures draw many positions with one env)."""
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
    """Simulate ``n`` random-action trajectories of ``length`` frames: a loop over ``env.reset`` and
    ``env.step``, with the actions from their own generator (seed + 1) and the starts from the env's.

    Returns:
        {"frames": (N, T, 64, 64, 3) uint8, "actions": (N, T-1, 2) float32 - action t leads from frame t
         to frame t+1, "proprio": (N, T, 2) float32 the agent's (x, y) in arena units}
    """
    env, rng = PointMassRoom(world), np.random.default_rng(seed + 1)
    frames = np.empty((n, length, SIZE, SIZE, 3), dtype=np.uint8)
    actions = np.empty((n, length - 1, 2), dtype=np.float32)
    proprio = np.empty((n, length, 2), dtype=np.float32)
    # One seeded reset whose start is thrown away: the simulator of the published runs drew a start when
    # it was built, and drawing it here too keeps every dataset byte-identical to the one they used (and
    # the trained checkpoint valid).
    env.reset(seed=seed)
    for i in tqdm(range(n), desc=f"simulating {world} (seed {seed})", disable=quiet):
        actions[i] = random_actions(rng, length - 1)  # (T-1, 2): own generator, same numbers as all at once
        frames[i, 0], info = env.reset()  # the next start from the env's generator
        proprio[i, 0] = info["pos"]
        for t in range(1, length):
            frames[i, t], _, _, _, info = env.step(actions[i, t - 1])
            proprio[i, t] = info["pos"]
    return {"frames": frames, "actions": actions, "proprio": proprio}


def trajectory_features(length: int):
    """The typed columns of the trajectory dataset: one row per trajectory of ``length`` frames."""
    import datasets  # imported here: it is slow to import and only the cache needs it

    return datasets.Features(
        {
            "frames": datasets.Array4D((length, SIZE, SIZE, 3), "uint8"),
            "actions": datasets.Array2D((length - 1, 2), "float32"),
            "proprio": datasets.Array2D((length, 2), "float32"),
        }
    )


def to_dataset(data: dict, features, chunk: int = 64):
    """Numpy columns of equal length -> an in-memory ``datasets.Dataset`` with ``features``.

    Converted ``chunk`` rows at a time (chapter 7's, itself chapter 1's): ``Dataset.from_dict`` on a large
    set at once peaks at several times the pixels' size in RAM. A row here is a whole trajectory (16
    frames, 197 kB), so 64 rows (12.6 MB) is about what 1,000 single frames are in chapter 1."""
    import datasets

    n = len(next(iter(data.values())))
    parts = [
        datasets.Dataset.from_dict({k: v[i : i + chunk] for k, v in data.items()}, features=features)
        for i in range(0, n, chunk)
    ]
    return datasets.concatenate_datasets(parts)


def save_dataset(ds, path: Path) -> None:
    """``save_to_disk`` into a temporary folder, then rename it to ``path``: a crash never leaves a
    half-written cache, and two runs writing the same data at once keep the first one's."""
    import datasets

    datasets.disable_progress_bars()  # our own tqdm bar already showed the generation
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)  # left over from a run of this pid that was stopped mid-write
    ds.save_to_disk(str(tmp))
    try:
        tmp.replace(path)
    except OSError:  # another run renamed the same data into place first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)


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
    world: str, n: int, length: int, seed: int, quiet: bool = False, data_dir: Path = DATA_DIR
) -> dict:
    """``make_trajectories`` generated once per (world, n, length, seed), saved with ``save_to_disk`` as a
    Hugging Face dataset under ``data_dir`` (default: this chapter's data/) in a folder named by a hash of
    the parameters, and loaded with ``load_from_disk`` (memory-mapped Arrow) afterwards. Returns the same
    dict of numpy arrays, in the same dtypes, as ``make_trajectories``.

    The write is atomic: a temporary folder of this process, then a rename, so a crash mid-write never
    leaves a half-written cache that a later run would trust, and two runs writing at once do not mix."""
    import datasets

    key = json.dumps({"world": world, "n": n, "length": length, "seed": seed, "v": 1})  # v: data changes
    path = Path(data_dir) / f"{world}_{hashlib.sha1(key.encode()).hexdigest()[:12]}"
    if path.exists():
        ds = datasets.load_from_disk(str(path))
        return {k: column(ds, k) for k in ("frames", "actions", "proprio")}
    data = make_trajectories(world, n, length, seed, quiet=quiet)
    save_dataset(to_dataset(data, trajectory_features(length)), path)
    return data


def make_tasks(world: str, n: int, seed: int, min_dist: float = 0.3) -> np.ndarray:
    """``n`` seeded goal-reaching tasks: (n, 2, 2) float, [start (x, y), goal (x, y)] at least ``min_dist``
    apart, both free positions drawn uniformly (DINO-WM's protocol for Wall: random start and goal)."""
    env, tasks = PointMassRoom(world), []
    env.reset(seed=seed)  # thrown away, as in make_trajectories: the published tasks stay the same
    while len(tasks) < n:
        start, goal = env.sample_free(), env.sample_free()
        if np.linalg.norm(start - goal) >= min_dist:
            tasks.append((start, goal))
    return np.array(tasks)
