"""Evaluate chapter 8: plan with the learned world model on seeded start/goal pairs it never saw.

    uv run validate.py                                   # the default set (below)
    uv run validate.py --planner mpc-gd --env umaze --episodes 20 --seed 3
    uv run validate.py --env pusht                       # the external benchmark (after train.py --env pusht)
    uv run validate.py --env pusht --planner oracle      # the same MPC-CEM on the true simulator
    uv run validate.py --quick --out /tmp/run1   # reads /tmp/run1/checkpoints, writes /tmp/run1/outputs

The default set: MPC-CEM on 200 tasks of `wall` and 200 of `umaze` (success with its 95 % Wilson
interval), all tasks of a room planned together as one batch; the oracle (CEM on the true simulator),
MPC-CEM with the latent distance alone (nothing read off the supervised position head), open-loop random
shooting, CEM and gradient descent, and MPC with gradient descent on the first 50 tasks; and a
random-action policy as the no-planning baseline. Planning time is measured twice in the same run: one
task alone (seconds per MPC step: latency) and the batch (task-steps per second: throughput). Writes
outputs/metrics.json, outputs/episodes.gif, outputs/cem_cost.png and outputs/imagined_vs_true.png.
`--env pusht` runs pusht/plan.py instead: 50 held-out PushT tasks (DINO-WM's protocol), with the learned
model or (`--planner oracle`) the true simulator; it writes outputs/metrics_pusht_<planner>.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from evaluate import (
    PLANNERS,
    PlanConfig,
    imagined_path,
    load_model,
    random_policy,
    run_episodes,
    to_tensor,
    wilson,
)
from pictures import save_cost_curve, save_episode_gifs, save_imagined_vs_true
from planners import task_generators
from tqdm import tqdm

from data_utils import WORLDS, find_agent, make_tasks
from utils import (
    UserError,
    exit_on_user_error,
    given_flags,
    load_checkpoint,
    output_root,
    pick_device,
    print_table,
    seed_everything,
    set_threads,
)

HELDOUT_SEED_OFFSET = 10_000  # tasks come from seed + 10000 (+ 1 for umaze): never the training seed
TARGETS = {
    "success/wall/mpc-cem": (">=", 0.97),
    "success_low95/wall/mpc-cem": (">=", 0.94),  # the lower end of the 95 % Wilson interval
    "success/umaze/mpc-cem": (">=", 0.97),
    "plan_s/wall/mpc-cem": ("<=", 0.10),  # one task, one MPC step
    "plan_throughput_ratio/wall": (">=", 10.0),  # task-steps per second, batch of 200 / one task alone
    "success/wall/oracle": (">=", 0.98),
    "success/umaze/oracle": (">=", 0.98),
}
LATENT_ONLY = "mpc-cem-latent"  # MPC-CEM with pos_weight 0 and the straight distance: the latent alone
ENVS = (*WORLDS, "pusht")
QUICK_VAL = {"episodes": 3, "few": 2, "latency": 1}  # --quick: few, short episodes
QUICK_PLAN = {"n_steps": 12, "samples": 100, "elites": 10, "iters": 4, "horizon": 5, "gd_steps": 10}


@dataclass
class ValConfig:
    """Validation settings (each is a flag); the planners' own settings are PlanConfig's flags."""

    checkpoint: str = ""  # default: <out>/checkpoints/world_model.pt (world_model_pusht.pt for pusht)
    planner: str = ""  # one planner (default: the default set)
    env: str = ""  # one environment (default: the default set)
    episodes: int = 200  # tasks per room for MPC-CEM, or for the one planner chosen
    few: int = 50  # tasks for the oracle and the other planners in the default set
    latency: int = 1  # tasks re-run one at a time to time one robot's planning (median seconds per plan)
    goal_image: str = ""  # a 64x64 RGB picture of the goal: plan towards it from seeded starts
    threads: int = 0  # torch threads; 0: the cores free right now
    seed: int = 0
    device: str = "auto"
    out: str = ""  # output root: reads checkpoints/, writes outputs/ ("": this chapter's folder)
    quick: bool = False


def parse_args(argv=None) -> tuple[ValConfig, PlanConfig]:
    """Command-line flags -> (ValConfig, PlanConfig); bad values are one-line errors."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in [*dataclasses.fields(ValConfig), *dataclasses.fields(PlanConfig)]:
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            p.add_argument(flag, action="store_true", help="a smoke run: few, short episodes, < 60 s")
        elif f.name == "device":
            p.add_argument(flag, default=f.default, choices=["auto", "cpu", "cuda", "mps"])
        elif f.name in ("out", "checkpoint"):
            what = {
                "out": "output root: reads checkpoints/, writes outputs/ (default: this chapter's folder)",
                "checkpoint": "written by train.py (default: <out>/checkpoints/world_model.pt)",
            }
            p.add_argument(flag, default="", help=what[f.name])
        else:
            p.add_argument(flag, type=type(f.default), default=f.default, help=f"default: {f.default!r}")
    args = vars(p.parse_args(argv))
    names = {f.name for f in dataclasses.fields(PlanConfig)}
    vc = ValConfig(**{k: v for k, v in args.items() if k not in names})
    pc = PlanConfig(**{k: v for k, v in args.items() if k in names})
    if vc.planner and vc.planner not in PLANNERS:
        raise UserError(f"unknown planner {vc.planner!r}; expected one of {', '.join(PLANNERS)}")
    if vc.env and vc.env not in ENVS:
        raise UserError(f"unknown environment {vc.env!r}; expected one of {', '.join(ENVS)}")
    if vc.goal_image and vc.env == "pusht":
        raise UserError("--goal-image works with --env wall or umaze")
    sizes = [(vc, QUICK_VAL), (pc, QUICK_PLAN)] if vc.quick else []  # the smoke run's sizes
    if vc.env == "pusht":  # PushT's own protocol and CEM budget (pusht/plan.py), smaller with --quick
        from pusht import PUSHT_PLAN, PUSHT_VAL, QUICK_PUSHT

        sizes = [(vc, PUSHT_VAL), (pc, PUSHT_PLAN)] + [(vc, QUICK_PUSHT), (pc, QUICK_PUSHT)] * vc.quick
    given = given_flags(p, argv)
    for cfg, sized in sizes:  # except where a flag was typed
        for k, v in sized.items():
            if hasattr(cfg, k):
                setattr(cfg, k, getattr(cfg, k) if k in given else v)
    if (
        vc.episodes < 1
        or vc.few < 1
        or vc.latency < 1
        or pc.n_steps < 1
        or pc.horizon < 1
        or not 1 <= pc.execute <= pc.horizon
    ):
        raise UserError(
            "need --episodes, --few, --latency, --n-steps, --horizon >= 1, 1 <= --execute <= --horizon"
        )
    if pc.distance not in ("learned", "straight") or pc.oracle_distance not in ("geodesic", "straight"):
        raise UserError("need --distance learned|straight and --oracle-distance geodesic|straight")
    if not 2 <= pc.elites <= pc.samples or pc.iters < 1 or pc.hold < 1:
        raise UserError("need 2 <= --elites <= --samples, --iters >= 1 and --hold >= 1")
    return vc, pc


def the_runs(vc: ValConfig) -> list[tuple[str, str, int]]:
    """(env, planner, episodes) to evaluate: the one asked for, or the default set."""
    if vc.planner or vc.env:
        return [(vc.env or "wall", vc.planner or "mpc-cem", vc.episodes)]
    runs = [(w, p, n) for w in WORLDS for p, n in (("mpc-cem", vc.episodes), ("oracle", vc.few))]
    few = (LATENT_ONLY, "random", "cem", "gd", "mpc-gd")
    return runs + [("umaze", LATENT_ONLY, vc.few)] + [("wall", p, vc.few) for p in few]


def read_goal_image(path: str) -> np.ndarray:
    """A goal picture from a PNG/JPEG file -> (64, 64, 3) uint8; anything else is a one-line error."""
    from PIL import Image

    try:
        frame = np.asarray(Image.open(path).convert("RGB"))
    except OSError as e:
        raise UserError(f"cannot read the goal image {path}: {e}") from None
    to_tensor(frame, "cpu")  # checks the shape: (64, 64, 3)
    try:
        find_agent(frame)
    except ValueError as e:
        raise UserError(f"{path}: {e}") from None
    return frame


def default_checkpoint(vc: ValConfig) -> Path:
    """The checkpoint train.py writes for ``vc.env`` under the output root; a missing one is a one-line
    error naming the train.py command (with --env and --out) that writes it."""
    pusht = vc.env == "pusht"
    path = output_root(vc.out) / "checkpoints" / ("world_model_pusht.pt" if pusht else "world_model.pt")
    if not path.exists():
        train_args = (("--env", "pusht") if pusht else ()) + (("--out", vc.out) if vc.out else ())
        load_checkpoint(path, "planning-world-model", train_args)  # raises the UserError
    return path


def main(argv=None) -> None:
    """Run the episodes, print the table, write metrics.json and the pictures."""
    vc, pc = parse_args(argv)
    set_threads(vc.threads)
    t_start = time.time()
    seed_everything(vc.seed)
    device = pick_device(vc.device)
    if vc.env == "pusht":  # the external benchmark: pusht/plan.py (the oracle needs no checkpoint)
        from pusht import validate_pusht  # gym-pusht is only needed here

        if vc.planner != "oracle":
            vc.checkpoint = vc.checkpoint or str(default_checkpoint(vc))
        return validate_pusht(vc, pc, device, output_root(vc.out) / "outputs")
    vc.checkpoint = vc.checkpoint or str(default_checkpoint(vc))
    ckpt = load_checkpoint(vc.checkpoint, "planning-world-model")
    model, scale = load_model(ckpt, device), ckpt["latent_scale"]
    metrics, baselines, histories, gif, results, counts = {}, {}, {}, [], {}, {}
    goal_frame = read_goal_image(vc.goal_image) if vc.goal_image else None
    intervals = {}
    for world, label, n in the_runs(vc):
        tasks = make_tasks(world, n, vc.seed + HELDOUT_SEED_OFFSET + WORLDS.index(world))
        if goal_frame is not None:  # the goal's position is read off the picture, only to score success
            tasks[:, 1] = find_agent(goal_frame)
        planner, rpc = label, pc
        if label == LATENT_ONLY:  # the latent distance alone: nothing read off the position head
            planner, rpc = "mpc-cem", dataclasses.replace(pc, pos_weight=0.0, distance="straight")
        t0 = time.time()
        res, batch_seconds = run_episodes(  # every task of the room at once, each its own random stream
            world, tasks[:, 0], tasks[:, 1], planner, rpc, model, scale, device,
            task_generators(vc.seed, n), goal_frame,
        )  # fmt: skip
        seconds = []  # one robot's planning time: the first few tasks again, one at a time
        for i in tqdm(range(min(vc.latency, n)), desc=f"timing {label} on {world}", leave=False):
            gen_i = task_generators(vc.seed, i + 1)[i:]  # task i's own stream, as in the batch
            one = (world, tasks[i : i + 1, 0], tasks[i : i + 1, 1], planner, rpc, model, scale, device, gen_i)
            seconds += run_episodes(*one, goal_frame)[1]
        key = f"{world}/{label}"
        wins = int(sum(r["success"] for r in res))
        counts.update({f"success/{key}": n, f"final_dist/{key}": n, f"plan_s/{key}": min(vc.latency, n)})
        metrics[f"success/{key}"] = wins / n
        intervals[f"success/{key}"] = wilson(wins, n)
        if label == "mpc-cem" and world == "wall":
            metrics[f"success_low95/{key}"], counts[f"success_low95/{key}"] = wilson(wins, n)[0], n
        metrics[f"final_dist/{key}"] = float(np.mean([r["final_dist"] for r in res]))
        metrics[f"plan_s/{key}"] = float(np.median(seconds))
        if label == "mpc-cem":  # throughput: the batch's task-steps per second, against one task alone's
            batch_rate = n * len(batch_seconds) / sum(batch_seconds)  # plans made per second, all tasks
            metrics[f"plan_task_steps_per_s/{key}"] = batch_rate
            metrics[f"plan_throughput_ratio/{world}"] = batch_rate * float(np.median(seconds))
            counts[f"plan_task_steps_per_s/{key}"] = counts[f"plan_throughput_ratio/{world}"] = n
        baselines[f"success/{key}/random_actions"] = random_policy(world, tasks, pc.n_steps, vc.seed)
        baselines[f"final_dist/{key}/start"] = float(
            np.mean(np.linalg.norm(tasks[:, 0] - tasks[:, 1], axis=1))
        )
        if planner == "oracle" and pc.oracle_distance == "geodesic" and not vc.planner:
            straight = dataclasses.replace(pc, oracle_distance="straight")  # the objective's share of misses
            few = tasks[:20]
            gens = task_generators(vc.seed, len(few))
            res_s, _ = run_episodes(world, few[:, 0], few[:, 1], planner, straight, None, 1, device, gens)
            baselines[f"success/{key}/straight_line_{len(few)}"] = float(
                np.mean([r["success"] for r in res_s])
            )
        print(
            f"{label} on {world}: success {metrics[f'success/{key}']:.3f} on {n} in {time.time() - t0:.0f} s"
        )
        results[key] = (tasks, res)
        if "cem" in planner or planner == "oracle":
            histories[key] = [r["history"] for r in res]
        gif += [(world, label, r, t[1]) for r, t in zip(res[:2], tasks[:2], strict=True)]
    for key in [k for k in metrics if k.startswith("plan_s/")]:
        oracle = f"plan_s/{key.split('/')[1]}/oracle"
        if oracle in metrics and key != oracle:
            baselines[f"{key}/oracle"] = metrics[oracle]
    targets = {k: list(v) for k, v in TARGETS.items() if k in metrics}
    ok = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b}
    passed = all(ok[op](metrics[k], t) for k, (op, t) in targets.items())
    print_table(metrics, baselines, targets, counts, intervals)
    out_dir = output_root(vc.out) / "outputs"
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "chapter": "8.planning-cem",
        "quick": vc.quick,
        "device": str(device),
        "train_seconds": float(ckpt.get("train_seconds", float("nan"))),
        "metrics": metrics,
        "baselines": baselines,
        "targets": targets,
        "passed": passed,
        "intervals95": intervals,
        "settings": {**dataclasses.asdict(pc), "episodes": vc.episodes, "few": vc.few, "seed": vc.seed},
    }
    (out_dir / "metrics.json").write_text(json.dumps(report, indent=2))
    save_episode_gifs(gif[:6], out_dir / "episodes.gif")
    if histories:
        save_cost_curve(histories, out_dir / "cem_cost.png")
    cases = []
    for key, (tasks, res) in list(results.items())[:3]:
        world = key.split("/")[0]
        if key.split("/")[1] != "oracle":
            imagined, true = imagined_path(model, world, tasks[0][0], res[0]["first_plan"], device)
            cases.append((world, imagined, true, tasks[0][1]))
    if cases:
        save_imagined_vs_true(cases, out_dir / "imagined_vs_true.png")
    if vc.quick:
        print("\nsmoke run (--quick): this checks the plumbing; the numbers are not the lesson's")
    print(f"\ntrain seconds {report['train_seconds']:.0f}, validate seconds {time.time() - t_start:.0f}; "
          f"targets {'PASSED' if passed else 'NOT met'}")  # fmt: skip
    print(
        f"wrote {out_dir / 'metrics.json'}, episodes.gif, cem_cost.png and imagined_vs_true.png in {out_dir}"
    )


if __name__ == "__main__":
    exit_on_user_error(main)
