"""The planar arm with nuisance: chapter 5's world, a gymnasium environment, and its cached datasets.

A two-link arm is pinned at the centre of a 64x64 frame (links 18 and 14 px long, 6 and 5 px thick,
a red end-effector), as in DINO-WM's Reacher and V-JEPA 2-AC's arm, in small. The body fills much of
the image, so *how far the arm is from a pose* shows in many pixels, not in one 3-px dot.

Every episode also has **nuisance** that a real camera has and that says nothing about the arm:
    - a textured background (8x8 blocks of random grey levels),
    - a lighting tint (each colour channel scaled by 0.75-1.25),
    - a distractor disk of random colour that moves on its own and bounces off the frame's edges.
A goal image is rendered under *another* episode's nuisance than the start, so a cost that compares
raw pixels sees mostly the nuisance; an encoder pre-trained to ignore it should not.

State: joint angles q = (q1, q2) in radians (q1 wraps, q2 is limited to +-2.6 so the elbow stays
open). Action: joint-angle velocities (dq1, dq2) in [-1, 1]^2, each step held for ``frame_skip`` = 5
sub-steps of at most 0.05 rad (a frame skip, as in DINO-WM). Proprioception: the robot's own joint
angles, as (cos q1, sin q1, cos q2, sin q2) so that nothing jumps at the wrap.

Shape key: M frames, N trajectories, T frames per trajectory, A = 2 action dims, P = 4 proprio dims.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from tqdm import tqdm

DATA_DIR = Path(__file__).parent / "data"
WORLD = "arm-nuisance"  # checkpoints record it, so one trained on another world is refused in one line
SIZE = 64
LINKS = (18 / SIZE, 14 / SIZE)  # link lengths, frame units (the frame is [0, 1]^2, y down)
WIDTHS = (3.0, 2.5)  # links' half-thickness, px
EE_RADIUS, BASE_RADIUS, DISTRACTOR_RADIUS = 3.5, 3.0, 6.0  # px
LINK_COLOURS = np.array([[40, 110, 255], [255, 200, 0]], dtype=np.float32)  # blue, yellow
EE_COLOUR, BASE_COLOUR = np.array([230, 30, 30], np.float32), np.array([60, 60, 60], np.float32)
Q2_LIMIT, MAX_STEP, FRAME_SKIP, DISTRACTOR_SPEED = 2.6, 0.05, 5, 0.012


@dataclass
class Nuisance:
    """What an episode's camera adds: background blocks (8, 8, 3) uint8, tint (3,), a distractor's
    position (2,) and velocity (2,) in frame units per sub-step and colour (3,). ``None`` fields: none."""

    background: np.ndarray
    tint: np.ndarray
    distractor: np.ndarray
    velocity: np.ndarray
    colour: np.ndarray

    @staticmethod
    def sample(rng, on: bool = True) -> Nuisance:
        """Random nuisance (``on``), or a plain black scene with no tint and the distractor off-frame."""
        if not on:
            return Nuisance(
                np.zeros((8, 8, 3), np.uint8), np.ones(3), np.full(2, -1.0), np.zeros(2), np.zeros(3)
            )
        angle = rng.uniform(0, 2 * np.pi)
        return Nuisance(
            background=np.repeat(rng.integers(0, 256, size=(8, 8, 1)), 3, axis=2).astype(np.uint8),
            tint=rng.uniform(0.75, 1.25, size=3),
            distractor=rng.uniform(0.1, 0.9, size=2),
            velocity=DISTRACTOR_SPEED * np.array([np.cos(angle), np.sin(angle)]),
            colour=rng.uniform(0, 255, size=3),
        )


def joints(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Joint angles (..., 2) -> base, elbow and end-effector positions (..., 2) in frame units."""
    base = np.full(q.shape, 0.5)
    elbow = base + LINKS[0] * np.stack([np.cos(q[..., 0]), np.sin(q[..., 0])], -1)
    a2 = q[..., 0] + q[..., 1]
    return base, elbow, elbow + LINKS[1] * np.stack([np.cos(a2), np.sin(a2)], -1)


def end_effector(q: np.ndarray) -> np.ndarray:
    """Joint angles (..., 2) -> end-effector (x, y) (..., 2) in frame units: what success is judged on."""
    return joints(q)[2]


def _segment_alpha(a: np.ndarray, b: np.ndarray, half_width: float) -> np.ndarray:
    """Anti-aliased coverage (M, H*W) of a thick segment from a to b (M, 2) px, at every pixel centre."""
    ax, ay, dx, dy = a[:, :1], a[:, 1:], (b - a)[:, :1], (b - a)[:, 1:]  # (M, 1) each
    px, py = _PX[None] - ax, _PY[None] - ay  # (M, H*W): pixel centres relative to a
    t = np.clip((px * dx + py * dy) / np.maximum(dx * dx + dy * dy, 1e-9), 0, 1)  # nearest point's fraction
    dist = np.sqrt((px - t * dx) ** 2 + (py - t * dy) ** 2)
    return np.clip(half_width + 0.5 - dist, 0.0, 1.0)


_PX, _PY = (v.reshape(-1).astype(np.float32) + 0.5 for v in np.meshgrid(np.arange(SIZE), np.arange(SIZE)))


def render(q: np.ndarray, background, tint, distractor, colour) -> np.ndarray:
    """Render M arms at once: q (M, 2), background (M, 8, 8, 3) uint8, tint (M, 3), distractor (M, 2),
    colour (M, 3) -> frames (M, 64, 64, 3) uint8. Layers: background, distractor, links, hand, base."""
    m = len(q)
    img = np.repeat(np.repeat(background.astype(np.float32), 8, 1), 8, 2).reshape(m, -1, 3)  # (M, HW, 3)

    def paint(alpha, rgb):  # alpha (M, HW), rgb (3,) or (M, 3)
        nonlocal img
        img = img * (1 - alpha[..., None]) + np.broadcast_to(rgb, (m, 3))[:, None] * alpha[..., None]

    base, elbow, hand = (v.astype(np.float32) * SIZE for v in joints(q.astype(np.float64)))
    d = distractor.astype(np.float32) * SIZE
    paint(_segment_alpha(d, d, DISTRACTOR_RADIUS), colour.astype(np.float32))
    paint(_segment_alpha(base, elbow, WIDTHS[0]), LINK_COLOURS[0])
    paint(_segment_alpha(elbow, hand, WIDTHS[1]), LINK_COLOURS[1])
    paint(_segment_alpha(hand, hand, EE_RADIUS), EE_COLOUR)
    paint(_segment_alpha(base, base, BASE_RADIUS), BASE_COLOUR)
    img = img * tint.astype(np.float32)[:, None]
    return np.clip(np.rint(img), 0, 255).astype(np.uint8).reshape(m, SIZE, SIZE, 3)


def render_many(q: np.ndarray, nuisance: Nuisance, chunk: int = 1024) -> np.ndarray:
    """Render poses q (M, 2) under one scene's nuisance, in chunks (M, 64, 64, 3) uint8."""
    out = []
    for i in range(0, len(q), chunk):
        part = q[i : i + chunk]
        n = nuisance  # the same scene for every pose: broadcast its fields to (len(part), ...)
        scene = [
            np.broadcast_to(v, (len(part), *np.shape(v)))
            for v in (n.background, n.tint, n.distractor, n.colour)
        ]
        out.append(render(part, *scene))
    return np.concatenate(out) if out else np.zeros((0, SIZE, SIZE, 3), np.uint8)


def step_joints(q: np.ndarray, action: np.ndarray, frame_skip: int = FRAME_SKIP) -> np.ndarray:
    """The arm's dynamics for any leading shape: q (..., 2), action (..., 2) in [-1, 1] -> next q."""
    q = q.astype(np.float64).copy()
    for _ in range(frame_skip):
        q = q + MAX_STEP * np.clip(action, -1, 1)
        q[..., 0] = (q[..., 0] + np.pi) % (2 * np.pi) - np.pi  # the shoulder turns freely
        q[..., 1] = np.clip(q[..., 1], -Q2_LIMIT, Q2_LIMIT)  # the elbow stops at its limit
    return q


def proprio_of(q: np.ndarray) -> np.ndarray:
    """Joint angles (..., 2) -> proprioception (..., 4) = (cos q1, sin q1, cos q2, sin q2), float32."""
    return np.concatenate([np.cos(q), np.sin(q)], -1)[..., [0, 2, 1, 3]].astype(np.float32)


class ArmReachEnv(gym.Env):
    """The planar arm with nuisance as a gymnasium environment.

    Observation: {"image": (64, 64, 3) uint8, "proprio": (4,) float32}. Action: (2,) float32 in [-1, 1].
    ``reset(seed=..., options={"q": (2,), "nuisance": Nuisance})`` may fix the pose and the scene.
    ``info`` holds the joint angles "q" and the end-effector "ee" (frame units, for evaluation only).
    Reward is 0: tasks are given as goal images, not as a reward.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, nuisance: bool = True, frame_skip: int = FRAME_SKIP, render_mode: str = "rgb_array"):
        self.use_nuisance, self.frame_skip, self.render_mode = nuisance, frame_skip, render_mode
        self.observation_space = spaces.Dict(
            {
                "image": spaces.Box(0, 255, (SIZE, SIZE, 3), np.uint8),
                "proprio": spaces.Box(-1.0, 1.0, (4,), np.float32),
            }
        )
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.q, self.scene = np.zeros(2), Nuisance.sample(np.random.default_rng(0), False)

    def _obs(self):
        return {"image": self.render(), "proprio": proprio_of(self.q)}, {
            "q": self.q.copy(),
            "ee": end_effector(self.q),
        }

    def reset(self, *, seed=None, options=None):
        """A random pose and scene from the env's generator (seeded by ``seed``); ``options`` may fix them."""
        super().reset(seed=seed)
        options = options or {}
        q = options.get("q")
        self.q = (
            np.array([self.np_random.uniform(-np.pi, np.pi), self.np_random.uniform(-Q2_LIMIT, Q2_LIMIT)])
            if q is None
            else np.asarray(q, dtype=np.float64).copy()
        )
        self.scene = options.get("nuisance") or Nuisance.sample(self.np_random, self.use_nuisance)
        self.scene = replace(
            self.scene, distractor=self.scene.distractor.copy(), velocity=self.scene.velocity.copy()
        )
        return self._obs()

    def step(self, action):
        """Hold ``action`` for ``frame_skip`` sub-steps; the distractor moves on its own meanwhile."""
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (2,) or not np.all(np.isfinite(a)) or np.abs(a).max() > 1.0 + 1e-6:
            raise ValueError(f"action must be (dq1, dq2) with values in [-1, 1], got {action!r}")
        self.q = step_joints(self.q, a, self.frame_skip)
        s = self.scene
        if s.distractor[0] >= 0:  # a disk that bounces off the frame's edges
            for _ in range(self.frame_skip):
                s.distractor += s.velocity
                out = (s.distractor < 0.05) | (s.distractor > 0.95)
                s.velocity[out] *= -1
                s.distractor = np.clip(s.distractor, 0.05, 0.95)
        obs, info = self._obs()
        return obs, 0.0, False, False, info

    def render(self) -> np.ndarray:
        """The current frame (64, 64, 3) uint8."""
        return render_many(self.q[None], self.scene)[0]


def random_actions(rng: np.random.Generator, n: int, keep: float = 0.6) -> np.ndarray:
    """``n`` random actions (n, 2) float32 in [-1, 1]; each repeats the previous one with probability
    ``keep``, so that trajectories sweep further than a pure random walk."""
    acts = rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
    for t in range(1, n):
        if rng.random() < keep:
            acts[t] = acts[t - 1]
    return acts


def make_trajectories(n: int, length: int, seed: int, nuisance: bool = True, quiet: bool = True) -> dict:
    """Simulate ``n`` random-action episodes of ``length`` frames with a loop over ``env.step``.

    Every frame is also rendered a second time, same pose, under another episode's nuisance
    ("frames_alt"): two views of one state that differ only in what the encoder should ignore
    (domain randomisation), which DINO pre-training uses as its pair of views.
    Returns:
        {"frames", "frames_alt": (N, T, 64, 64, 3) uint8, "actions": (N, T-1, 2) float32 (action t leads
         from frame t to t+1), "proprio": (N, T, 4) float32, "q": (N, T, 2) float32 joint angles}
    """
    env, alt = ArmReachEnv(nuisance), ArmReachEnv(nuisance)
    rng = np.random.default_rng(seed + 1)
    out = {
        "frames": np.empty((n, length, SIZE, SIZE, 3), np.uint8),
        "frames_alt": np.empty((n, length, SIZE, SIZE, 3), np.uint8),
        "actions": np.stack([random_actions(rng, length - 1) for _ in range(n)]),
        "proprio": np.empty((n, length, 4), np.float32),
        "q": np.empty((n, length, 2), np.float32),
    }
    for i in tqdm(range(n), desc=f"simulating the arm (seed {seed})", disable=quiet):
        obs, info = env.reset(seed=seed * 100_003 + i)
        alt.reset(seed=seed * 100_003 + i + 50_000_000, options={"q": info["q"]})
        for t in range(length):
            if t:
                obs, _, _, _, info = env.step(out["actions"][i, t - 1])
                alt.q = info["q"].copy()  # same pose; the alt scene's distractor moves on its own
                alt.step(np.zeros(2))
            out["frames"][i, t], out["frames_alt"][i, t] = obs["image"], alt.render()
            out["proprio"][i, t], out["q"][i, t] = obs["proprio"], info["q"]
    return out


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
    n: int, length: int, seed: int, nuisance: bool = True, quiet: bool = False, data_dir: Path = DATA_DIR
) -> dict:
    """``make_trajectories`` generated once, saved as a Hugging Face dataset (Arrow on disk) under
    ``data_dir`` keyed by its parameters, and loaded (memory-mapped) from there afterwards. Returns numpy
    arrays."""
    import datasets  # imported here: it is slow to import and only needed for the cache

    key = json.dumps({"world": "arm", "n": n, "length": length, "seed": seed, "nuisance": nuisance, "v": 3})
    path = Path(data_dir) / f"arm_{hashlib.sha1(key.encode()).hexdigest()[:12]}"
    if not path.exists():
        data = make_trajectories(n, length, seed, nuisance, quiet=quiet)
        frame = datasets.Array4D((length, SIZE, SIZE, 3), "uint8")
        features = datasets.Features(
            {
                "frames": frame,
                "frames_alt": frame,
                "actions": datasets.Array2D((length - 1, 2), "float32"),
                "proprio": datasets.Array2D((length, 4), "float32"),
                "q": datasets.Array2D((length, 2), "float32"),
            }
        )
        ds = datasets.Dataset.from_dict({k: list(v) for k, v in data.items()}, features=features)
        tmp = path.with_name(path.name + ".tmp")
        ds.save_to_disk(str(tmp))
        tmp.replace(path)  # atomic: a crash mid-write never leaves a half-written cache
        return data
    ds = datasets.load_from_disk(str(path))
    return {k: column(ds, k) for k in ds.column_names}  # frames uint8, the rest float32, as stored


def make_tasks(n: int, seed: int, goal_steps: int = 6, min_dist: float = 0.15) -> list[dict]:
    """``n`` goal-reaching tasks, DINO-WM's protocol: the goal is the pose that ``goal_steps`` random
    actions (each repeated with probability 0.8) reach from the start, shown under *another* scene.

    Each task: {"q_start", "q_goal": (2,), "start_scene", "goal_scene": Nuisance}; the end-effectors of
    start and goal are at least ``min_dist`` (frame units; 0.15 = 9.6 px) apart, 2.5x the success radius.
    """
    rng, tasks = np.random.default_rng(seed), []
    while len(tasks) < n:
        q0 = np.array([rng.uniform(-np.pi, np.pi), rng.uniform(-Q2_LIMIT, Q2_LIMIT)])
        q1 = q0
        for a in random_actions(rng, goal_steps, keep=0.8):
            q1 = step_joints(q1, a)
        if np.linalg.norm(end_effector(q0) - end_effector(q1)) >= min_dist:
            scenes = {"start_scene": Nuisance.sample(rng), "goal_scene": Nuisance.sample(rng)}
            tasks.append({"q_start": q0, "q_goal": q1, **scenes})
    return tasks
