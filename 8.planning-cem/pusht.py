"""The external benchmark: PushT (gym-pusht, the task of DINO-WM and Diffusion Policy) at 64x64 pixels.

A blue disk (the agent, moved by a PD controller towards a target point) pushes a grey T-shaped block.
We keep the chapter's action convention: an action (dx, dy) in [-1, 1]^2 asks the agent to move to
``agent + 100 * (dx, dy)`` pixels (of the 512-px board); proprioception is the agent's (x, y) / 512.

Tasks follow DINO-WM's PushT protocol in small: the goal is the state a scripted pushing sequence
reaches from the start (``GOAL_STEPS`` actions later), shown to the planner as an image; success is
DINO-WM's criterion: agent and block positions within 20 px (a 4-vector distance) and the block's angle
within pi/9 of the goal's.

Shape key: N trajectories, T frames, A = 2 action dims.
"""

from __future__ import annotations

import hashlib
import json
import os
import time

import numpy as np

from data_utils import DATA_DIR

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame renders off-screen
REACH, GOAL_STEPS = 100.0, 8  # pixels per unit action; scripted actions from start to goal


def make_env():
    """The gym-pusht environment rendering 64x64 frames (a one-line error if the package is missing)."""
    try:
        import gym_pusht  # noqa: F401  (registers the environment)
        import gymnasium
    except ImportError as e:
        from utils import UserError

        raise UserError(f"PushT needs the gym-pusht package ({e.name} is missing)") from None
    return gymnasium.make(
        "gym_pusht/PushT-v0", obs_type="pixels_agent_pos", render_mode="rgb_array",
        observation_width=64, observation_height=64,
    )  # fmt: skip


class PushT:
    """PushT behind the point-mass interface: ``reset(state)``, ``step(action)``, ``render()``, ``pos``."""

    def __init__(self):
        self.env = make_env()
        self.frame = None

    def reset(self, state=None, seed: int | None = None) -> np.ndarray:
        """Reset to a state [agent x, y, block x, y, angle] (or a seeded random one); return the frame."""
        options = None if state is None else {"reset_to_state": np.asarray(state, dtype=np.float64)}
        obs, _ = self.env.reset(seed=seed, options=options)
        self.frame = obs["pixels"]
        return self.frame

    def step(self, action) -> np.ndarray:
        """Move the target by REACH * action (2,) or (1, 2) from where the agent is; return the frame."""
        action = np.asarray(action, dtype=np.float64).reshape(2)
        target = np.clip(self.agent + REACH * np.clip(action, -1, 1), 0, 512)
        obs, *_ = self.env.step(target)
        self.frame = obs["pixels"]
        return self.frame

    def render(self) -> np.ndarray:
        """The current frame (64, 64, 3) uint8."""
        return self.frame

    @property
    def agent(self) -> np.ndarray:
        """The agent's (x, y) in board pixels."""
        return np.array(self.env.unwrapped.agent.position)

    @property
    def pos(self) -> np.ndarray:
        """Proprioception: the agent's (x, y) / 512."""
        return self.agent / 512

    def state(self) -> np.ndarray:
        """[agent x, y, block x, y, block angle] (pixels, radians)."""
        u = self.env.unwrapped
        return np.array([*u.agent.position, *u.block.position, u.block.angle])


def scripted_action(env: PushT, rng: np.random.Generator, aim: np.ndarray) -> np.ndarray:
    """A pushing move: head for a point ``aim`` near the block (so the data holds contacts), with noise."""
    block = env.state()[2:4]
    delta = (block + aim - env.agent) / REACH  # (2,) towards the aim point
    return np.clip(delta + rng.normal(0, 0.3, 2), -1, 1).astype(np.float32)


def make_pusht_trajectories(n: int, length: int, seed: int) -> dict:
    """Half random-action and half scripted pushing trajectories; same dict as data_utils'."""
    from tqdm import tqdm

    env, rng = PushT(), np.random.default_rng(seed)
    frames = np.empty((n, length, 64, 64, 3), dtype=np.uint8)
    actions = np.empty((n, length - 1, 2), dtype=np.float32)
    proprio = np.empty((n, length, 2), dtype=np.float32)
    for i in tqdm(range(n), desc=f"simulating pusht (seed {seed})", mininterval=2.0):
        frames[i, 0], proprio[i, 0] = env.reset(seed=int(rng.integers(1 << 30))), env.pos
        aim = rng.normal(0, 30, 2)
        for t in range(1, length):
            a = scripted_action(env, rng, aim) if i % 2 else rng.uniform(-1, 1, 2).astype(np.float32)
            frames[i, t], proprio[i, t], actions[i, t - 1] = env.step(a), env.pos, a
    return {"frames": frames, "actions": actions, "proprio": proprio}


def load_pusht_trajectories(n: int, length: int, seed: int) -> dict:
    """``make_pusht_trajectories`` cached under data/ as .npz (generated once per settings)."""
    key = json.dumps({"world": "pusht", "n": n, "length": length, "seed": seed, "v": 1})
    path = DATA_DIR / f"pusht_{hashlib.sha1(key.encode()).hexdigest()[:12]}.npz"
    if path.exists():
        with np.load(path) as f:
            return {k: f[k] for k in ("frames", "actions", "proprio")}
    data = make_pusht_trajectories(n, length, seed)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, **data)
    tmp.replace(path)
    return data


def make_pusht_tasks(n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``n`` tasks: (start state (5,), goal state (5,), goal frame (64, 64, 3)) per task."""
    env, rng, tasks = PushT(), np.random.default_rng(seed), []
    for _ in range(n):
        env.reset(seed=int(rng.integers(1 << 30)))
        start, aim = env.state(), rng.normal(0, 30, 2)
        for _ in range(GOAL_STEPS):
            env.step(scripted_action(env, rng, aim))
        tasks.append((start, env.state(), env.render().copy()))
    return tasks


def pusht_success(goal: np.ndarray, state: np.ndarray) -> tuple[bool, float]:
    """DINO-WM's criterion: ||(agent, block) position difference|| < 20 px and angle difference < pi/9."""
    pos = float(np.linalg.norm(goal[:4] - state[:4]))
    angle = abs((goal[4] - state[4] + np.pi) % (2 * np.pi) - np.pi)
    return bool(pos < 20 and angle < np.pi / 9), pos


def validate_pusht(vc, pc, device) -> None:
    """Plan on PushT tasks with the PushT world model; print the table and write metrics.json."""
    import json as _json

    import torch
    from evaluate import load_model, make_planner, to_tensor
    from pictures import save_cost_curve
    from planners import model_cost, mpc

    from utils import CKPT_DIR, OUT_DIR, UserError, load_checkpoint, print_table

    planner = vc.planner or "mpc-cem"
    if planner == "oracle":
        raise UserError("the oracle plans with a copy of the simulator; it is only for wall and umaze")
    ckpt = load_checkpoint(vc.checkpoint or CKPT_DIR / "world_model_pusht.pt", "planning-world-model")
    if ckpt["config"].get("env") != "pusht":
        raise UserError("this checkpoint was trained on the rooms; run `uv run train.py --env pusht` first")
    model, scale = load_model(ckpt, device), ckpt["latent_scale"]
    gen, env = torch.Generator().manual_seed(vc.seed), PushT()
    tasks = make_pusht_tasks(vc.episodes, vc.seed + 10_000)
    pc.n_steps = min(pc.n_steps, 2 * GOAL_STEPS)
    wins, dists, seconds, hist, t0 = [], [], [], [], time.time()
    for start, goal, goal_frame in tasks:
        env.reset(start)
        with torch.no_grad():
            z_goal = model.encode(to_tensor(goal_frame, device))  # (1, D)

        def make_cost(e, z_goal=z_goal):
            with torch.no_grad():
                z0 = model.encode(to_tensor(e.render(), device))  # (1, D)
            return model_cost(model, z0, z_goal, scale, pc.pos_weight)

        fn, horizon, execute = make_planner(planner, pc, gen)
        out = mpc(env, make_cost, fn, horizon, pc.n_steps, execute)
        ok, dist = pusht_success(goal, env.state())
        wins, dists, seconds = wins + [ok], dists + [dist], seconds + out["plan_seconds"]
        hist.append(out["history"][0].tolist())
    start_dist = float(np.median([pusht_success(g, s)[1] for s, g, _ in tasks]))
    metrics = {
        f"success/pusht/{planner}": float(np.mean(wins)),
        f"final_dist/pusht/{planner}": float(np.median(dists)),
        f"plan_s/pusht/{planner}": float(np.median(seconds)),
    }
    stay = float(np.mean([pusht_success(g, s)[0] for s, g, _ in tasks]))  # doing nothing
    baselines = {f"success/pusht/{planner}/do_nothing": stay, f"final_dist/pusht/{planner}/start": start_dist}
    print(f"{planner} on pusht: {len(tasks)} tasks in {time.time() - t0:.0f} s")
    print_table(metrics, baselines, {}, dict.fromkeys(metrics, len(tasks)))
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    report = {
        "chapter": "8.planning-cem", "quick": vc.quick, "device": str(device),
        "train_seconds": float(ckpt.get("train_seconds", float("nan"))),
        "metrics": metrics, "baselines": baselines, "targets": {}, "passed": True,
    }  # fmt: skip
    (OUT_DIR / "metrics_pusht.json").write_text(_json.dumps(report, indent=2))
    if "cem" in planner:
        save_cost_curve({f"pusht/{planner}": hist}, OUT_DIR / "cem_cost_pusht.png")
    print(f"wrote {OUT_DIR / 'metrics_pusht.json'}")
