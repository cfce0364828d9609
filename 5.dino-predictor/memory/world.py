"""Two rooms seen one at a time: a world whose future needs what was seen before a gap.

Each room is a 3x3 grid of 8x8-pixel cells (a 24x24 frame) with a floor of its own colour (room A
navy, room B brown) and one object: a 6x6 square of one of six colours in one of the nine cells. Both
objects are re-sampled at every reset, so no model can learn *where* they are: only remember it.
The agent sees one room per frame. Action 0 stays, action 1 goes through the door to the other room.

An episode (``schedule``) stays ``A_FRAMES`` = 3 frames in room A, crosses to room B for a gap of G
frames, then returns to A and stays. To predict the return frame a model must know room A's object,
which it last saw G frames earlier: with a 3-frame context it is gone for every G >= 3.

Shape key: E episodes, T frames per episode (``EP_LEN`` = 18), 24x24x3 uint8 frames.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from tqdm import tqdm

CELL, GRID = 8, 3  # px per cell, cells per side
SIZE = CELL * GRID  # 24 px
FLOORS = np.array([[25, 30, 80], [90, 60, 30]], np.uint8)  # room A navy, room B brown
PALETTE = np.array(
    [[230, 40, 40], [40, 200, 60], [60, 120, 255], [240, 220, 40], [220, 60, 220], [40, 220, 220]], np.uint8
)  # red, green, blue, yellow, magenta, cyan
COLOUR_NAMES = ["red", "green", "blue", "yellow", "magenta", "cyan"]
N_CELLS, N_COLOURS = GRID * GRID, len(PALETTE)
CHANCE = 1 / (N_CELLS * N_COLOURS)  # guessing both the colour and the cell of an unseen object
A_FRAMES, MAX_GAP, AFTER = 3, 12, 3  # frames in A before the gap, the longest gap, frames from the return
EP_LEN = A_FRAMES + MAX_GAP + AFTER  # 18: every episode has the same length whatever its gap


def render_room(room: int, colour: int, cell: int) -> np.ndarray:
    """One room's frame (24, 24, 3) uint8: its floor, and the object (6x6, colour index) in ``cell``."""
    img = np.empty((SIZE, SIZE, 3), np.uint8)
    img[:] = FLOORS[room]
    r, c = divmod(cell, GRID)
    img[r * CELL + 1 : r * CELL + 7, c * CELL + 1 : c * CELL + 7] = PALETTE[colour]
    return img


class TwoRoomsEnv(gym.Env):
    """Two rooms with one object each, seen one room at a time.

    Observation: the current room's frame (24, 24, 3) uint8. Action: Discrete(2), 0 stay, 1 cross the
    door. ``info``: "room" (0 = A, 1 = B), "colour" (2,) and "cell" (2,) of both rooms' objects, for
    evaluation only (no model reads them). Reward 0, never terminates: the data loop decides the length.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, render_mode: str = "rgb_array"):
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0, 255, (SIZE, SIZE, 3), np.uint8)
        self.action_space = spaces.Discrete(2)
        self.room, self.colour, self.cell = 0, np.zeros(2, np.int64), np.zeros(2, np.int64)

    def _info(self) -> dict:
        return {"room": self.room, "colour": self.colour.copy(), "cell": self.cell.copy()}

    def reset(self, *, seed=None, options=None):
        """New objects in both rooms (colour and cell uniform), the agent in room A."""
        super().reset(seed=seed)
        self.room = 0
        self.colour = self.np_random.integers(0, N_COLOURS, size=2)
        self.cell = self.np_random.integers(0, N_CELLS, size=2)
        return self.render(), self._info()

    def step(self, action):
        """Action 1 crosses to the other room; 0 stays. Objects never move."""
        if not self.action_space.contains(action):
            raise ValueError(f"action must be 0 (stay) or 1 (cross the door), got {action!r}")
        self.room = 1 - self.room if int(action) == 1 else self.room
        return self.render(), 0.0, False, False, self._info()

    def render(self) -> np.ndarray:
        """The current room (24, 24, 3) uint8."""
        return render_room(self.room, int(self.colour[self.room]), int(self.cell[self.room]))


def schedule(gap: int, length: int = EP_LEN) -> np.ndarray:
    """Actions (length - 1,) int64 of an episode: ``A_FRAMES`` frames in A, ``gap`` in B, then A.

    Action t leads from frame t to frame t+1, so the first B frame is A_FRAMES and the return frame
    (the first A frame after the gap) is ``return_frame(gap)`` = A_FRAMES + gap.
    """
    if not 1 <= gap <= length - A_FRAMES - AFTER:
        raise ValueError(f"gap must be between 1 and {length - A_FRAMES - AFTER}, got {gap}")
    actions = np.zeros(length - 1, np.int64)
    actions[A_FRAMES - 1] = 1  # leave A
    actions[A_FRAMES - 1 + gap] = 1  # come back
    return actions


def return_frame(gap) -> np.ndarray | int:
    """Index of the first frame back in room A after a gap of ``gap`` frames."""
    return A_FRAMES + gap


def make_episodes(gaps: np.ndarray, seed: int, quiet: bool = True) -> dict:
    """Simulate one episode per entry of ``gaps`` with a loop over ``env.step``.

    Returns:
        {"frames": (E, T, 24, 24, 3) uint8, "actions": (E, T-1) int64, "gap": (E,) int64,
         "colour", "cell": (E, 2) int64 of room A's and room B's objects}
    """
    env, e = TwoRoomsEnv(), len(gaps)
    out = {
        "frames": np.empty((e, EP_LEN, SIZE, SIZE, 3), np.uint8),
        "actions": np.stack([schedule(int(g)) for g in gaps]) if e else np.zeros((0, EP_LEN - 1), np.int64),
        "gap": np.asarray(gaps, np.int64),
        "colour": np.empty((e, 2), np.int64),
        "cell": np.empty((e, 2), np.int64),
    }
    for i in tqdm(range(e), desc=f"simulating two rooms (seed {seed})", disable=quiet):
        obs, info = env.reset(seed=seed * 100_003 + i)
        out["frames"][i, 0], out["colour"][i], out["cell"][i] = obs, info["colour"], info["cell"]
        for t, a in enumerate(out["actions"][i]):
            out["frames"][i, t + 1] = env.step(int(a))[0]
    return out


def load_episodes(gaps: np.ndarray, seed: int, data_dir: Path, quiet: bool = False) -> dict:
    """``make_episodes`` generated once, saved as a Hugging Face dataset under ``data_dir`` (named by
    its parameters), read back with ``load_from_disk`` and ``with_format("torch")`` afterwards.

    Returns numpy arrays, as ``make_episodes``.
    """
    import datasets  # slow to import; only the cache needs it

    key = json.dumps({"world": "two-rooms", "gaps": np.asarray(gaps).tolist(), "seed": seed, "v": 1})
    name = f"two_rooms_n{len(gaps)}_seed{seed}_{hashlib.sha1(key.encode()).hexdigest()[:8]}"
    path = Path(data_dir) / name
    if not path.exists():
        data = make_episodes(gaps, seed, quiet=quiet)
        features = datasets.Features(
            {
                "frames": datasets.Array4D((EP_LEN, SIZE, SIZE, 3), "uint8"),
                "actions": datasets.Sequence(datasets.Value("int64"), length=EP_LEN - 1),
                "gap": datasets.Value("int64"),
                "colour": datasets.Sequence(datasets.Value("int64"), length=2),
                "cell": datasets.Sequence(datasets.Value("int64"), length=2),
            }
        )
        ds = datasets.Dataset.from_dict({k: list(v) for k, v in data.items()}, features=features)
        tmp = path.with_name(path.name + ".tmp")
        ds.save_to_disk(str(tmp))
        tmp.replace(path)  # atomic: a crash mid-write never leaves a half-written cache
        return data
    ds = datasets.load_from_disk(str(path))
    # uint8 frames stay uint8 (the torch format widens integers to int64 unless told the dtype)
    rows = ds.select_columns(["frames"]).with_format("torch", dtype=torch.uint8)[:]
    rows |= ds.select_columns(["actions", "gap", "colour", "cell"]).with_format("torch")[:]
    return {k: v.numpy() for k, v in rows.items()}  # {column: one stacked array}
