"""Goal-reaching episodes: one function that runs any planner on any point-mass task, and its settings.

An episode (DINO-WM's protocol): reset the simulator at a seeded start, show the planner the current
frame and an image of the goal state, let it act for ``n_steps`` actions, then measure how far the agent
ended from the goal; success = closer than SUCCESS_RADIUS.

Episodes run in lockstep as a batch: each is its own robot with its own plan and its own random stream
(planners/noise.py), and the planners score all of them in one tensor, so the world model runs once per
CEM iteration for every task. The planning time of one robot is measured separately, with a batch of one.

Shape key: B episodes, S samples, H horizon, A action dims, D latent dim.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from planners import cem, gradient_plan, model_cost, mpc, oracle_cost, oracle_fields, random_shooting

from data_utils import PointMassRoom, step_positions
from models import WorldModel
from utils import UserError

SUCCESS_RADIUS = 0.06  # arena units (3.8 px): the agent's centre must end this close to the goal's
PLANNERS = ("random", "cem", "gd", "mpc-cem", "mpc-gd", "oracle")


@dataclass
class PlanConfig:
    """How every planner is run (flags of validate.py)."""

    n_steps: int = 25  # actions per episode
    horizon: int = 5  # actions per plan (MPC planners and the oracle)
    execute: int = 1  # actions executed per plan before re-planning (MPC)
    samples: int = 150  # CEM samples per iteration (random shooting gets samples * iters in one go)
    elites: int = 15  # (300, 30, 10 reached the same success at 3.3x the arithmetic: NOTES.md)
    iters: int = 6
    std: float = 0.3  # CEM's first standard deviation (per action dimension; actions are in [-1, 1])
    hold: int = 1  # CEM noise held for this many steps (coherent moves; 1 = independent)
    gd_steps: int = 30
    gd_restarts: int = 8
    pos_weight: float = 1.0  # weight of the position term in the model's objective
    latent_weight: float = 1.0  # weight of the latent term in the model's objective
    distance: str = (
        "learned"  # the position term: "learned" (round the walls, the distance head) or "straight"
    )
    oracle_distance: str = "geodesic"  # the oracle's distance: "geodesic" (round the walls) or "straight"


def to_tensor(frames: np.ndarray, device) -> torch.Tensor:
    """uint8 frames (B, 64, 64, 3) or one (64, 64, 3) -> (B, 3, 64, 64) float in [0, 1]; other shapes
    are a one-line error (a goal image of the wrong size, say)."""
    if frames.dtype != np.uint8 or frames.shape[-3:] != (64, 64, 3) or frames.ndim not in (3, 4):
        raise UserError(f"a goal image must be a 64x64 RGB uint8 array (64, 64, 3), got {frames.shape}")
    x = torch.from_numpy(np.array(frames)).reshape(-1, 64, 64, 3)  # (B, 64, 64, 3) a writable copy
    return x.permute(0, 3, 1, 2).float().to(device) / 255


def load_model(ckpt: dict, device) -> WorldModel:
    """Rebuild the world model from a checkpoint (frozen: planning never trains it)."""
    cfg = ckpt["config"]
    try:
        model = WorldModel(
            cfg["latent_dim"], cfg["ch"], cfg.get("hidden", 256), pos_dim=cfg.get("pos_dim", 2)
        )
        model.load_state_dict(ckpt["state"])
    except (KeyError, RuntimeError) as e:
        raise UserError(f"the checkpoint does not match this chapter's model ({type(e).__name__})") from None
    return model.to(device).eval().requires_grad_(False)


def make_planner(name: str, pc: PlanConfig, gen):
    """A batched planner(cost_fn, mean (B, H, A)) -> (plan (B, H, A), history) and its horizon / execute.

    gen: a list of B generators (one random stream per task: planners/noise.py), one generator, or None."""
    if name not in PLANNERS:
        raise UserError(f"unknown planner {name!r}; expected one of {', '.join(PLANNERS)}")
    open_loop = not name.startswith("mpc") and name != "oracle"
    horizon = pc.n_steps if open_loop else pc.horizon  # open loop: one plan for the whole episode
    execute = pc.n_steps if open_loop else pc.execute
    if name == "random":
        fn = lambda c, m: random_shooting(c, len(m), horizon, pc.samples * pc.iters, gen=gen)  # noqa: E731
    elif name.endswith("gd"):
        fn = lambda c, m: gradient_plan(c, m, pc.gd_restarts, pc.gd_steps, gen=gen)  # noqa: E731
    else:
        kw = {"hold": pc.hold, "gen": gen}
        fn = lambda c, m: cem(c, m, pc.std, pc.samples, pc.elites, pc.iters, **kw)  # noqa: E731
    return fn, horizon, execute


class Rooms:
    """B copies of one room, stepped together with the batched true physics (one robot per episode)."""

    def __init__(self, world: str, starts: np.ndarray):
        self.room = PointMassRoom(world)
        self.walls, self.pos = self.room.walls, np.array(starts, dtype=np.float64)  # (B, 2)
        self.path = [self.pos.copy()]  # every position of every episode

    def step(self, actions: np.ndarray) -> None:
        """actions: (B, 2) in [-1, 1]."""
        self.pos = step_positions(self.walls, self.pos, actions)
        self.path.append(self.pos.copy())

    def render(self) -> np.ndarray:
        """(B, 64, 64, 3) uint8: what each episode's camera sees now."""
        return np.stack([self.room.render(p) for p in self.pos])


def run_episodes(
    world, starts, goals, planner, pc: PlanConfig, model, latent_scale, device, gen, goal_frame=None
):
    """Seeded goal-reaching episodes with one planner, run together (each is its own robot and plan).

    Args:
        starts, goals: (B, 2) positions; the planners see only frames, except the oracle, which plans
            with the true simulator (positions). model / latent_scale: the learned world model.
        gen: a list of B generators, one per episode (planners.task_generators), or one for all.
        goal_frame: (64, 64, 3) uint8 goal image for every episode (default: each goal rendered).
    Returns:
        one dict per episode: {"success", "final_dist", "positions": (n_steps+1, 2), "history": the first
        plan's cost per iteration, "first_plan": (H, A), "goal_frame": (64, 64, 3)}, and the list of
        seconds per planning call (for the whole batch).
    """
    env, b = Rooms(world, starts), len(starts)
    if goal_frame is None:  # the goal is an *image* of the goal state
        goal_frames = np.stack([env.room.render(g) for g in goals])  # (B, 64, 64, 3)
    else:
        goal_frames = np.repeat(goal_frame[None], b, axis=0)
    fn, horizon, execute = make_planner(planner, pc, gen)
    if planner == "oracle":
        fields = oracle_fields(env.walls, goals) if pc.oracle_distance == "geodesic" else None
        make_cost = lambda e: oracle_cost(e.walls, e.pos, goals, fields)  # noqa: E731
    else:
        with torch.no_grad():
            z_goal = model.encode(to_tensor(goal_frames, device))  # (B, D)

        def make_cost(e):
            with torch.no_grad():
                z0 = model.encode(to_tensor(e.render(), device))  # (B, D): from the current frames only
            return model_cost(model, z0, z_goal, latent_scale, pc.pos_weight, pc.distance, pc.latent_weight)

    desc = f"{planner} on {world}" if b > 1 else None
    out = mpc(env, make_cost, fn, horizon, pc.n_steps, execute, batch=b, desc=desc)
    path, dist = np.stack(env.path, 1), np.linalg.norm(env.pos - goals, axis=1)  # (B, n_steps+1, 2), (B,)
    episodes = [
        {
            "success": bool(dist[i] < SUCCESS_RADIUS),
            "final_dist": float(dist[i]),
            "positions": path[i],
            "history": out["history"][i].tolist(),
            "first_plan": out["first_plan"][i],
            "goal_frame": goal_frames[i],
        }
        for i in range(b)
    ]
    return episodes, out["plan_seconds"]


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval of a success rate: (low, high). Unlike p +- 1.96 sqrt(p(1-p)/n) it
    stays inside [0, 1] and is not zero-width at p = 1 (50 successes in 50 tasks: [0.93, 1])."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def random_policy(world: str, tasks: np.ndarray, n_steps: int, seed: int) -> float:
    """The baseline with no model and no planning: ``n_steps`` uniformly random actions per task."""
    rng, wins = np.random.default_rng(seed), 0
    for start, goal in tasks:
        env = PointMassRoom(world)
        _, info = env.reset(options={"pos": start})
        for a in rng.uniform(-1, 1, size=(n_steps, 2)):
            _, _, _, _, info = env.step(a)
        wins += np.linalg.norm(info["pos"] - goal) < SUCCESS_RADIUS
    return wins / len(tasks)


@torch.no_grad()
def imagined_path(model, world: str, start, plan: np.ndarray, device) -> tuple[np.ndarray, np.ndarray]:
    """Where the model believes a plan goes (its position head on the imagined latents) and where the
    true simulator takes it. plan: (H, A). Returns two (H+1, 2) paths."""
    env = PointMassRoom(world)
    frame, info = env.reset(options={"pos": start})
    z0 = model.encode(to_tensor(frame, device))  # (1, D)
    z = model.rollout(z0, torch.from_numpy(plan).float()[None].to(device))  # (1, H, D)
    imagined = torch.cat([model.position(z0), model.position(z[0])]).cpu().numpy()  # (H+1, 2)
    true = [info["pos"]]
    for a in plan:
        _, _, _, _, info = env.step(np.clip(a, -1, 1))
        true.append(info["pos"])
    return imagined, np.array(true)
