"""The point-mass room of chapter 7 (`wall`), its discrete action words, and the question-answer data.

The room is chapter 5's ``PointMassRoom`` (5.dino-predictor/data_utils.py, itself chapter 3's and 1's),
copied so that this chapter stands alone, and rendered at 32x32 so that a language model can read it in
16 image tokens. New here: five action *words* of a fixed size (stay, left, right, up, down: each
moves the agent by 0.2 of the arena, four fifths of a grid cell, unless a wall stops it), a 4x4 grid of cells
that names where the agent is ("row1 col2"), and templated questions about the present and the future.

- ``wall``: two rooms joined by a door at mid-height (DINO-WM's Wall task in small). The wall sits on
  the border between grid columns 1 and 2, so "right" from the left room is stopped unless the agent
  is in the door: the future is not simply "present plus the arrows".

Shape key: N samples or trajectories, T frames, H/W frame height/width (32), K actions per question.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
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


class PointMassRoom:
    """An orange disk in a room with a wall and a door, moved by action words of a fixed size.

    Args:
        size: frame side in pixels. max_step: move per sub-step (arena units). frame_skip: sub-steps per
        action word (so one word moves 5 x 0.04 = 0.2). radius: the disk's radius (arena units).
    ``pos`` is the centre (x, y) in arena units: the proprioception.
    """

    def __init__(self, size=SIZE, max_step=0.04, frame_skip=5, radius=0.05, seed=0):
        self.walls = np.array(WALLS, dtype=np.float32)  # (n_walls, 4)
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

    def step(self, action: int) -> np.ndarray:
        """Apply action word ``action`` (an index into ACTIONS) for ``frame_skip`` sub-steps; return the
        frame. A sub-step that would enter a wall is not taken (walls stop you)."""
        if not (isinstance(action, int | np.integer) and 0 <= action < len(ACTIONS)):
            raise ValueError(f"action must be an index in [0, {len(ACTIONS)}), got {action!r}")
        move = MOVES[action] * self.max_step
        for _ in range(self.frame_skip):
            if not self.collides(self.pos + move):
                self.pos = self.pos + move
        return self.render()

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
    """``n`` trajectories of random action words ('stay' included), for the world model.

    Returns:
        {"frames": (N, T, 32, 32, 3) uint8, "actions": (N, T-1) int64 - action t leads from frame t to
         t+1, "proprio": (N, T, 2) float32 the agent's (x, y) in arena units}
    """
    env, rng = PointMassRoom(seed=seed), np.random.default_rng(seed + 1)
    frames = np.empty((n, length, SIZE, SIZE, 3), dtype=np.uint8)
    proprio = np.empty((n, length, 2), dtype=np.float32)
    actions = rng.integers(0, len(ACTIONS), size=(n, length - 1))
    for i in tqdm(range(n), desc=f"simulating trajectories (seed {seed})", disable=quiet):
        frames[i, 0], proprio[i, 0] = env.reset(), env.pos
        for t in range(1, length):
            frames[i, t], proprio[i, t] = env.step(int(actions[i, t - 1])), env.pos
    return {"frames": frames, "actions": actions, "proprio": proprio}


def make_questions(n: int, k: int, seed: int, quiet: bool = True) -> dict:
    """``n`` question samples: a start frame, ``k`` moving action words, the present and future cells.

    Starts and ends closer than MARGIN to a grid line are re-drawn, so every answer is readable.
    Returns:
        {"frames": (N, 32, 32, 3) uint8, "actions": (N, K) int64 (never 'stay'), "start": (N, 2) and
         "end": (N, 2) float32 positions, "present": (N, 2) and "future": (N, 2) int64 cells (row, col),
         "blocked": (N,) bool - a wall stopped at least one move}
    """
    env, rng = PointMassRoom(seed=seed), np.random.default_rng(seed + 1)
    out = {key: [] for key in ("frames", "actions", "start", "end", "blocked")}
    with tqdm(total=n, desc=f"asking questions (seed {seed})", disable=quiet) as bar:
        while len(out["frames"]) < n:
            start, acts = env.sample_free(), rng.integers(1, len(ACTIONS), size=k)  # moving words only
            if near_border(start):
                continue
            frame = env.reset(start)
            for a in acts:
                env.step(int(a))
            free_end = start + MOVES[acts].sum(0) * env.max_step * env.frame_skip
            if near_border(env.pos):
                continue
            blocked = not np.allclose(env.pos, free_end)
            for key, v in zip(out, (frame, acts, start, env.pos.copy(), blocked), strict=True):
                out[key].append(v)
            bar.update(1)
    d = {key: np.array(v) for key, v in out.items()}
    d["start"], d["end"] = d["start"].astype(np.float32), d["end"].astype(np.float32)
    d["present"], d["future"] = cell_of(d["start"]), cell_of(d["end"])
    return d


def _cached(name: str, params: dict, make) -> dict:
    """Return make() generated once per ``params`` and cached under data/ as .npz (written atomically)."""
    key = json.dumps(params | {"v": 1}, sort_keys=True)
    path = DATA_DIR / f"{name}_{hashlib.sha1(key.encode()).hexdigest()[:12]}.npz"
    if path.exists():
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    data = make()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **data)
    tmp.replace(path)  # atomic: a crash mid-write never leaves a half-written cache
    return data


def load_trajectories(n: int, length: int, seed: int, quiet: bool = False) -> dict:
    """``make_trajectories`` cached under data/."""
    params = {"n": n, "length": length, "seed": seed}
    return _cached("traj", params, lambda: make_trajectories(n, length, seed, quiet))


def load_questions(n: int, k: int, seed: int, quiet: bool = False) -> dict:
    """``make_questions`` cached under data/."""
    return _cached("qa", {"n": n, "k": k, "seed": seed}, lambda: make_questions(n, k, seed, quiet))
