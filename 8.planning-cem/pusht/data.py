"""PushT's training data: scripted pushes with noise (and some random actions), made by a loop over the
gym-pusht env and cached as a Hugging Face dataset (the rooms' cache layout, data_utils.py).

Shape key: N trajectories, T frames, A = 2 action dims.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .world import PushT, scripted_action
from data_utils import DATA_DIR, column, save_dataset, to_dataset

COLUMNS = ("frames", "actions", "proprio", "state")


def pose_features(state: np.ndarray) -> np.ndarray:
    """[agent x, y, block x, y, angle] -> (6,) agent and block positions / 512, cos and sin of the angle:
    what the model's pose head learns to read off a frame (the block's pose is *supervision*: see NOTES)."""
    return np.array([*(state[:4] / 512), np.cos(state[4]), np.sin(state[4])], dtype=np.float32)


def make_pusht_trajectories(n: int, length: int, seed: int) -> dict:
    """``n`` trajectories of ``length`` frames, one planner action apart (FRAMESKIP env steps): three in
    four scripted pushes towards a point near the block (aim changed now and then, noise on every action),
    one in four uniformly random actions; each starts from a seeded random state (gym-pusht's reset).

    Returns:
        {"frames": (N, T, 64, 64, 3) uint8, "actions": (N, T-1, A) float32 (action t leads from frame t to
        t+1), "proprio": (N, T, 6) float32 ``pose_features``, "state": (N, T, 5) float32 the true pose}.
    """
    from tqdm import tqdm

    env, rng = PushT(), np.random.default_rng(seed)
    frames = np.empty((n, length, 64, 64, 3), dtype=np.uint8)
    actions = np.empty((n, length - 1, 2), dtype=np.float32)
    state = np.empty((n, length, 5), dtype=np.float32)
    for i in tqdm(range(n), desc=f"simulating pusht (seed {seed})", mininterval=2.0):
        frames[i, 0], state[i, 0] = env.reset(seed=int(rng.integers(1 << 30))), env.state()
        aim = rng.normal(0, 30, 2)  # (2,) px off the block's centre
        for t in range(1, length):
            if rng.random() < 0.1:
                aim = rng.normal(0, 30, 2)  # another side of the block
            a = scripted_action(env, rng, aim) if i % 4 else rng.uniform(-1, 1, 2).astype(np.float32)
            frames[i, t], actions[i, t - 1], state[i, t] = env.step(a), a, env.state()
    proprio = np.stack([[pose_features(s) for s in traj] for traj in state]).astype(np.float32)  # (N, T, 6)
    return {"frames": frames, "actions": actions, "proprio": proprio, "state": state}


def pusht_features(length: int):
    """The typed columns of the PushT dataset: one row per trajectory of ``length`` frames."""
    import datasets

    return datasets.Features(
        {
            "frames": datasets.Array4D((length, 64, 64, 3), "uint8"),
            "actions": datasets.Array2D((length - 1, 2), "float32"),
            "proprio": datasets.Array2D((length, 6), "float32"),
            "state": datasets.Array2D((length, 5), "float32"),
        }
    )


def load_pusht_trajectories(n: int, length: int, seed: int, data_dir: Path = DATA_DIR) -> dict:
    """``make_pusht_trajectories`` generated once per settings, saved with ``save_to_disk`` under
    ``data_dir``/pusht_<hash> (a temporary folder, then a rename: a crash never leaves a half-written
    cache) and read back with ``load_from_disk`` in the stored dtypes. Returns the same dict."""
    import datasets

    key = json.dumps({"world": "pusht", "n": n, "length": length, "seed": seed, "v": 3})  # v: data changes
    path = Path(data_dir) / f"pusht_{hashlib.sha1(key.encode()).hexdigest()[:12]}"
    if path.exists():
        ds = datasets.load_from_disk(str(path))
        return {k: column(ds, k) for k in COLUMNS}
    data = make_pusht_trajectories(n, length, seed)
    save_dataset(to_dataset(data, pusht_features(length)), path)
    return data
