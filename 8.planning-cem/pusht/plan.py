"""Planning on PushT: the chapter's MPC-CEM with the true simulator (the oracle) or the learned world model,
on seeded held-out tasks, and the table ``validate.py --env pusht`` prints.

Both planners are the same CEM (planners/cem.py) inside the same MPC loop (planners/mpc.py), re-planning
after every action up to the episode's end (``to_the_end``: the horizon shrinks to the actions left, so no
plan is scored past the moment the task is judged). Only the cost differs:
- the oracle imagines every candidate with ``Physics`` (pymunk, one candidate at a time: no batching, so
  its search is kept small) and scores the true pose (``pose_cost``) after the plan's last action;
- the learned planner imagines with the world model and scores, after the last action, the latent
  distance to the goal image's latent plus the same ``pose_cost`` on the poses the model's pose head
  reads off the imagined latent and off the goal image.
Why the last action and not the sum over the horizon (the rooms' cost): a recorded push reaches its goal
only at its end, so a summed cost rewards rushing at a goal that cannot be reached early.

Shape key: B tasks, S candidate sequences, H horizon, A = 2 action dims, D latent dim.
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch

from .world import PLAN_STEPS, Physics, PushT, angle_diff, body_state, pose_cost, pusht_success

# The planner's settings on PushT (flags you type win): 5-action episodes; CEM with a wide first spread
# (1.0: pushes need full-speed moves) and many iterations (25 iterations of 64 samples solved more
# tasks than 6 of 200, measured with the oracle: NOTES.md).
PUSHT_PLAN = {
    "n_steps": PLAN_STEPS,
    "horizon": PLAN_STEPS,
    "samples": 64,
    "elites": 8,
    "iters": 25,
    "std": 1.0,
}
PUSHT_VAL = {"episodes": 50}
QUICK_PUSHT = {"episodes": 2, "samples": 16, "elites": 4, "iters": 2}


class PushTBatch:
    """B PushT environments stepped together (the MPC loop's ``env``): one robot per task."""

    def __init__(self, starts: list[np.ndarray]):
        self.envs = [PushT() for _ in starts]
        for env, s in zip(self.envs, starts, strict=True):
            env.reset(s)

    def step(self, actions: np.ndarray) -> None:
        """actions: (B, A) in [-1, 1], one planner action per task (FRAMESKIP env steps each)."""
        for env, a in zip(self.envs, actions, strict=True):
            env.step(a)

    def render(self) -> np.ndarray:
        """(B, 64, 64, 3) uint8: what each task's camera sees now."""
        return np.stack([env.render() for env in self.envs])

    def states(self) -> np.ndarray:
        """(B, 5) [agent x, y, block x, y, angle] of each task."""
        return np.stack([env.state() for env in self.envs])


def oracle_cost(physics: Physics, bodies: np.ndarray, goals: np.ndarray):
    """The oracle's objective: the true pose cost after the last action, every candidate imagined by the
    true physics from the real body state. bodies: (B, 10) body_state; goals: (B, 5).

    Returns:
        cost_fn: actions (B, S, H, A) -> (B, S) (not differentiable; one pymunk world, one candidate at a
        time).
    """

    def cost_fn(actions):
        acts = actions.detach().cpu().double().numpy()  # (B, S, H, A)
        cost = np.zeros(acts.shape[:2])  # (B, S)
        for i, (body, goal) in enumerate(zip(bodies, goals, strict=True)):
            for j, a in enumerate(acts[i]):  # one candidate at a time: pymunk cannot batch
                cost[i, j] = pose_cost(physics.rollout(body, a)[-1], goal)
        return torch.from_numpy(cost).float()

    return cost_fn


def head_pose(p: torch.Tensor) -> torch.Tensor:
    """The pose head's output (..., 6) [agent x, y, block x, y] / 512, cos, sin -> (..., 5) in pixels and
    radians (the layout of ``PushT.state``)."""
    return torch.cat([p[..., :4] * 512, torch.atan2(p[..., 5], p[..., 4])[..., None]], dim=-1)


def learned_cost(model, z0, z_goal, latent_scale: float, pos_weight: float = 1.0, latent_weight: float = 1.0):
    """The learned objective after the last imagined action: latent distance to the goal image's latent
    (in units of two random frames' distance) + pos_weight x pose_cost between the poses the pose head reads
    off the imagined latent and off the goal image's latent. z0, z_goal: (B, D).

    Returns:
        cost_fn: actions (B, S, H, A) -> (B, S).
    """
    goal_pose = head_pose(model.position(z_goal))  # (B, 5)

    def cost_fn(actions):
        s = actions.shape[1]
        z = model.rollout(z0[:, None].expand(-1, s, -1), actions)[:, :, -1]  # (B, S, D) after the last action
        latent = (z - z_goal[:, None]).pow(2).mean(-1) / latent_scale  # (B, S)
        pose = pose_cost(head_pose(model.position(z)), goal_pose[:, None])  # (B, S)
        return latent_weight * latent + pos_weight * pose

    return cost_fn


def run_pusht(tasks, planner: str, pc, gens, model=None, scale=1.0, device="cpu", batch=None) -> list[dict]:
    """Plan every task with MPC-CEM ("oracle": true physics and pose; "mpc-cem": the learned model;
    "replay": the recorded actions, no planning), ``batch`` tasks at a time (default: all at once; the
    oracle plans one at a time). Returns per task {"success", "dist" (px), "state" (5,), "frame",
    "history", "plan_seconds"}."""
    from evaluate import make_planner, to_tensor
    from planners import mpc

    batch = batch or (1 if planner == "oracle" else len(tasks))
    physics, results = (Physics() if planner == "oracle" else None), []
    for i in range(0, len(tasks), batch):
        part, g = tasks[i : i + batch], gens[i : i + batch]
        env, goals = PushTBatch([t["start"] for t in part]), np.stack([t["goal"] for t in part])  # (B, 5)
        out = {"history": np.zeros((len(part), 0)), "plan_seconds": [0.0]}
        if planner == "replay":  # the goal is reachable: the recorded actions reach it
            for a in np.stack([t["actions"] for t in part], 1):  # (B, A) per step
                env.step(a)
        else:
            fn, horizon, execute = make_planner("oracle" if planner == "oracle" else "mpc-cem", pc, g)
            if planner == "oracle":

                def make_cost(e, goals=goals):  # the real bodies now, positions and velocities
                    return oracle_cost(physics, np.stack([body_state(x.u) for x in e.envs]), goals)

            else:
                frames = np.stack([t["goal_frame"] for t in part])  # (B, 64, 64, 3): the goal images
                with torch.no_grad():
                    z_goal = model.encode(to_tensor(frames, device))  # (B, D)

                def make_cost(e, z_goal=z_goal):
                    with torch.no_grad():
                        z0 = model.encode(to_tensor(e.render(), device))  # (B, D) from the current frames
                    return learned_cost(model, z0, z_goal, scale, pc.pos_weight, pc.latent_weight)

            desc = f"{planner} on pusht, tasks {i + 1}-{i + len(part)} of {len(tasks)}"
            with torch.no_grad():
                out = mpc(
                    env,
                    make_cost,
                    fn,
                    horizon,
                    pc.n_steps,
                    execute,
                    batch=len(part),
                    desc=desc,
                    to_the_end=True,
                )
        for j, (t, state) in enumerate(zip(part, env.states(), strict=True)):
            ok, dist = pusht_success(t["goal"], state)
            r = {"success": ok, "dist": dist, "state": state, "frame": env.envs[j].render()}
            results.append({**r, "history": out["history"][j].tolist(), "plan_seconds": out["plan_seconds"]})
    return results


@torch.no_grad()
def model_checks(model, scale: float, tasks, device) -> dict:
    """Why the learned planner wins or misses, measured on the tasks themselves with the recorded actions
    (which reach the goal): where the model *imagines* they take the block (its pose head after 5 imagined
    steps from the start frame, against the true goal pose), how well it reads the goal image's pose, and
    how often its cost ranks the recorded actions below doing nothing (the slope the search needs).

    Returns {name: value}: mean block position error (px of the 512-px board) and angle error (degrees)
    imagined and read, and the fraction of tasks whose cost prefers the recorded actions."""
    from evaluate import to_tensor

    env, starts = PushT(), []
    for t in tasks:
        starts.append(env.reset(t["start"]))
    z0 = model.encode(to_tensor(np.stack(starts), device))  # (B, D)
    z_goal = model.encode(to_tensor(np.stack([t["goal_frame"] for t in tasks]), device))  # (B, D)
    goal = torch.from_numpy(np.stack([t["goal"] for t in tasks])).float()  # (B, 5)
    recorded = torch.from_numpy(np.stack([t["actions"] for t in tasks])).float()  # (B, H, A)
    imagined = head_pose(model.position(model.rollout(z0, recorded)[:, -1]))  # (B, 5)
    read = head_pose(model.position(z_goal))  # (B, 5)
    cost = learned_cost(model, z0, z_goal, scale)(torch.stack([recorded, torch.zeros_like(recorded)], 1))
    err = lambda p: (p[:, 2:4] - goal[:, 2:4]).norm(dim=-1).mean().item()  # noqa: E731
    ang = lambda p: float(np.degrees(angle_diff(p[:, 4], goal[:, 4]).mean().item()))  # noqa: E731
    return {
        "block_err_px/imagined": err(imagined), "block_angle_err_deg/imagined": ang(imagined),
        "block_err_px/goal_read": err(read), "block_angle_err_deg/goal_read": ang(read),
        "cost_prefers_recorded": float((cost[:, 0] < cost[:, 1]).float().mean()),
    }  # fmt: skip


def validate_pusht(vc, pc, device, out_dir) -> None:
    """Plan on ``vc.episodes`` held-out PushT tasks with ``vc.planner`` (default mpc-cem, the learned model;
    "oracle": the true simulator), print the table with the replay and do-nothing baselines, write
    ``<out_dir>/metrics_pusht_<planner>.json`` and ``pusht_<planner>.png``."""
    from evaluate import load_model, wilson
    from pictures import save_cost_curve

    from .world import make_pusht_tasks
    from utils import UserError, load_checkpoint, print_table

    planner = vc.planner or "mpc-cem"
    if planner not in ("mpc-cem", "oracle"):
        raise UserError(f"PushT plans with mpc-cem (the learned model) or oracle, not {planner!r}")
    model, scale, ckpt = None, 1.0, {}
    if planner != "oracle":
        ckpt = load_checkpoint(vc.checkpoint, "planning-world-model")
        if ckpt["config"].get("env") != "pusht":
            raise UserError(
                "this checkpoint was trained on the rooms; run `uv run train.py --env pusht` first"
            )
        model, scale = load_model(ckpt, device), ckpt["latent_scale"]
    from planners import task_generators

    t0 = time.time()
    tasks = make_pusht_tasks(vc.episodes, vc.seed + 10_000)  # seeds >= 10,000: training never uses them
    gens = task_generators(vc.seed, len(tasks))
    res = run_pusht(tasks, planner, pc, gens, model, scale, device)
    seconds = time.time() - t0
    replay = run_pusht(tasks, "replay", pc, gens)
    n, wins, key = len(tasks), int(sum(r["success"] for r in res)), f"pusht/{planner}"
    starts = [pusht_success(t["goal"], t["start"]) for t in tasks]  # doing nothing: the start is the end
    metrics = {
        f"success/{key}": wins / n,
        f"final_dist/{key}": float(np.mean([r["dist"] for r in res])),
    }
    if planner == "oracle":  # one task at a time: seconds per MPC step of one robot (median)
        metrics[f"plan_s/{key}"] = float(np.median([s for r in res for s in r["plan_seconds"]]))
    else:  # all tasks in one batch: the batch's seconds per MPC step, shared out per task
        metrics[f"plan_s_per_task/{key}"] = float(np.median(res[0]["plan_seconds"]) / n)
    baselines = {
        f"success/{key}/replay": float(np.mean([r["success"] for r in replay])),
        f"success/{key}/do_nothing": float(np.mean([ok for ok, _ in starts])),
        f"final_dist/{key}/start": float(np.mean([d for _, d in starts])),
    }
    if model is not None:  # the model's own errors on these tasks (model_checks)
        metrics.update({f"{k.split('/')[0]}/{key}" + (f"/{k.split('/')[1]}" if "/" in k else ""): v
                        for k, v in model_checks(model, scale, tasks, device).items()})  # fmt: skip
    counts = {**dict.fromkeys(metrics, n), **({f"plan_s/{key}": 1} if planner == "oracle" else {})}
    print(f"{planner} on pusht: {n} tasks in {seconds:.0f} s")
    print_table(metrics, baselines, {}, counts, {f"success/{key}": wilson(wins, n)})
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "chapter": "8.planning-cem", "quick": vc.quick, "device": str(device),
        "train_seconds": float(ckpt.get("train_seconds", float("nan"))),
        "metrics": metrics, "baselines": baselines, "targets": {}, "passed": True,
        "intervals95": {f"success/{key}": wilson(wins, n)}, "validate_seconds": seconds,
        "settings": {**vars(pc), "episodes": n, "seed": vc.seed},
    }  # fmt: skip
    path = out_dir / f"metrics_pusht_{planner}.json"
    path.write_text(json.dumps(report, indent=2))
    save_cost_curve({key: [r["history"] for r in res]}, out_dir / f"cem_cost_pusht_{planner}.png")
    save_pusht_picture(tasks[:6], res[:6], out_dir / f"pusht_{planner}.png")
    print(f"wrote {path}, cem_cost_pusht_{planner}.png and pusht_{planner}.png in {out_dir}")


def save_pusht_picture(tasks, res, path) -> None:
    """A row per task: the start frame, where the planner ended, the goal image (titles: success, px)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    env = PushT()
    fig, axes = plt.subplots(len(tasks), 3, figsize=(4.5, 1.6 * len(tasks)), squeeze=False)
    for row, t, r in zip(axes, tasks, res, strict=True):
        frames = (env.reset(t["start"]), r["frame"], t["goal_frame"])
        titles = ("start", f"end: {'ok' if r['success'] else 'miss'} {r['dist']:.0f} px", "goal image")
        for ax, f, title in zip(row, frames, titles, strict=True):
            ax.imshow(f)
            ax.set_title(title, fontsize=7)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
