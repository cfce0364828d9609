"""Evaluate chapter 5 on held-out trajectories and goal-reaching tasks (seeds never seen in training).

    uv run validate.py
    uv run validate.py --checkpoint checkpoints/dino_wm.pt --quick
    uv run validate.py --part memory   # part 2: recall against the gap (memory/evaluation.py)

Measures: the slope of each feature space's cost (before any predictor: outputs/cost_landscape.png);
the feature rollout error at horizons 1..5 against copy-last, with the planner's context window; the
causal-mask ablation; goal reaching from a goal *image* with CEM-MPC on held-out tasks, for our DINO,
the same ViT at random init, raw pixels, and the oracle (true dynamics, true distance). Writes
outputs/metrics.json, rollout.gif and rollout.png (truth above the decoded rollout), goal_reaching.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from evaluate import decode, goal_reaching, load_models, rollout_errors
from landscape import landscape, save_landscape, slope
from pictures import save_goal_picture, save_rollout_gif, save_rollout_strip

from data_utils import load_trajectories, make_tasks
from utils import (
    PART_HELP,
    PARTS,
    UserError,
    exit_on_user_error,
    given_flags,
    load_checkpoint,
    output_root,
    pick_device,
    seed_everything,
    set_threads,
    split_part,
)

H, GIF_STEPS, HELDOUT = 5, 10, 10_000  # error horizons, rollout length in the GIF, held-out seed offset
TARGETS = {
    "feat_err_h5_over_copy_last": ("<=", 0.5),
    "goal_success": (">=", 0.8),
    "goal_success_minus_random_init": (">=", 0.3),
    "goal_success_minus_pixels": (">=", 0.3),
}
NAMES = {"dino": "our DINO (frozen)", "random": "random-init ViT (frozen)", "pixels": "raw pixels",
         "oracle": "oracle (true dynamics)"}  # fmt: skip
NAMES |= {f"{k}/true": f"{v.split(' (')[0]}, true future" for k, v in list(NAMES.items())[:3]}


@dataclass
class ValConfig:
    """Validation settings; each is a flag (--field-name)."""

    checkpoint: str = ""  # default: <out>/checkpoints/dino_wm.pt, where train.py writes it
    n_traj: int = 100  # held-out trajectories for the rollout errors
    episodes: int = 50  # goal-reaching tasks per encoder
    mpc_steps: int = 20  # actions executed per episode
    horizon: int = 5  # CEM planning horizon
    samples: int = 64  # CEM samples per iteration
    elites: int = 8
    iters: int = 4  # CEM iterations per plan
    replan_every: int = 2  # execute this many actions, then re-plan
    slope_tasks: int = 20  # tasks for the cost-slope measurements
    ceiling: bool = False  # also plan with the true simulator in place of each predictor (slow, see README)
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # torch threads; 0: the cores free right now (see utils.choose_threads)
    out: str = ""  # output root: reads checkpoints/, writes data/ and outputs/ ("": this chapter's folder)
    quick: bool = False


QUICK = {"n_traj": 8, "episodes": 2, "mpc_steps": 4, "samples": 16, "elites": 4, "iters": 2, "slope_tasks": 2}


def parse_args(argv=None) -> ValConfig:
    """Command-line flags -> ValConfig."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in dataclasses.fields(ValConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            helps = {"quick": "a smoke run: few trajectories and episodes",
                     "ceiling": "also plan each encoder's cost with the true simulator in place of the "
                     "predictor: the ceiling its features allow (slow: renders every candidate)"}  # fmt: skip
            p.add_argument(flag, action="store_true", help=helps[f.name])
        else:
            typ = {"int": int, "float": float, "str": str}[f.type]
            kw = {"choices": ["auto", "cpu", "cuda", "mps"]} if f.name == "device" else {}
            p.add_argument(flag, type=typ, default=f.default, help=f"(default: {f.default})", **kw)
    p.add_argument("--part", choices=PARTS, default="dino", help=PART_HELP)
    ns = vars(p.parse_args(argv))
    ns.pop("part")  # part 1 here; validate.py's run() sends --part memory to memory/evaluation.py
    cfg, typed = ValConfig(**ns), given_flags(p, argv)
    if cfg.quick:  # --quick shrinks only what was not typed
        cfg = dataclasses.replace(cfg, **{k: v for k, v in QUICK.items() if k not in typed})
    if "checkpoint" in typed and not Path(cfg.checkpoint).exists():  # a typo, not a missing training run
        raise UserError(f"no such file: {cfg.checkpoint}")
    sizes = ("n_traj", "episodes", "mpc_steps", "horizon", "samples", "elites", "iters", "replan_every")
    bad = [
        f"--{k.replace('_', '-')} {getattr(cfg, k)} (must be at least 1)"
        for k in sizes
        if getattr(cfg, k) < 1
    ]
    if cfg.elites > cfg.samples:
        bad.append(f"--elites {cfg.elites} (must be at most --samples {cfg.samples})")
    if not 1 <= cfg.slope_tasks <= cfg.episodes:
        bad.append(f"--slope-tasks {cfg.slope_tasks} (must be between 1 and --episodes {cfg.episodes})")
    if bad:
        raise UserError("bad flags: " + "; ".join(bad))
    return cfg


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval of a success rate k / n."""
    if n == 0:
        return 0.0, 1.0
    p, z2 = k / n, z * z / n
    centre, half = (p + z2 / 2) / (1 + z2), z * np.sqrt(p * (1 - p) / n + z2 / (4 * n)) / (1 + z2)
    return float(centre - half), float(centre + half)


def print_tables(metrics: dict, baselines: dict, table: dict, n_tasks: int) -> None:
    """The targets table, the rollout error per horizon with the ablation, and the encoder comparison."""
    print(f"\n{'metric':34s} {'value':>8s} {'target':>8s}   baseline")
    for key, (op, t) in TARGETS.items():
        base = ", ".join(
            f"{k.split('/')[-1]} {v:.3f}" for k, v in baselines.items() if k.rsplit("/", 1)[0] == key
        )
        print(f"{key:34s} {metrics[key]:8.3f} {op + ' ' + format(t, 'g'):>8s}   {base}")
    print(
        f"\n{'feature MSE (standardised), window 1':38s}"
        + "".join(f"{'h' + str(i):>7s}" for i in range(1, H + 1))
    )
    for label, src, suffix in (("predictor", metrics, ""), ("copy-last", baselines, "/copy_last")):
        print(f"{label:38s}" + "".join(f"{src[f'feat_err_h{i}' + suffix]:7.3f}" for i in range(1, H + 1)))
    if "nomask_over_mask_err_h5" in metrics:
        m = metrics
        print(f"causal-mask ablation (teacher forcing alone, window {m['ablation_window']:.0f}): h5 error "
              f"without the mask {m['nomask_over_mask_err_h5']:.3f} x with it; held-out teacher-forced loss "
              f"{m['tf_loss_nomask']:.3f} without vs {m['tf_loss_mask']:.3f} with (it peeks)")  # fmt: skip
    head = f"{'cost slope':>10s} {'h5 err/copy':>12s} {'success (95% CI)':>22s} {'final dist':>11s}"
    print(f"\n{'encoder':30s} {head}")
    for name, row in table.items():
        ci = f"{row['success']:.2f} ({row['ci'][0]:.2f}-{row['ci'][1]:.2f})"
        sl = f"{row['slope']:10.3f}" if "slope" in row else f"{'':10s}"
        ratio = f"{row['ratio']:12.3f}" if "ratio" in row else f"{'':12s}"
        print(f"{NAMES[name]:30s} {sl} {ratio} {ci:>22s} {row['dist']:11.3f}")
    print(f"({n_tasks} held-out tasks; success = end-effector within 0.06 of the goal's; final dist = mean)")


def main(argv=None) -> None:
    """Load the checkpoint, evaluate on held-out data, print the tables, save metrics and pictures."""
    cfg = parse_args(argv)
    set_threads(cfg.threads)  # first line of output: how many threads, and why
    device = pick_device(cfg.device)
    seed_everything(cfg.seed)
    root = output_root(cfg.out)  # reads checkpoints/, writes data/ and outputs/ under it
    ckpt = load_checkpoint(cfg.checkpoint or root / "checkpoints" / "dino_wm.pt", "dino-wm")
    encoders, predictors, decoder = load_models(ckpt, device)
    t0, num_hist = time.time(), ckpt["config"]["num_hist"]
    data = load_trajectories(
        cfg.n_traj, GIF_STEPS + 1, seed=cfg.seed + HELDOUT, quiet=True, data_dir=root / "data"
    )
    proprio, actions = torch.from_numpy(data["proprio"]), torch.from_numpy(data["actions"])
    tasks = make_tasks(cfg.episodes, seed=cfg.seed + HELDOUT + 1)
    metrics, baselines, table, curves = {}, {}, {}, {}
    out_dir = root / "outputs"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, enc in encoders.items():
        z = enc.encode(data["frames"], device)  # (B, 1+T, N, D)
        err, copy, _ = rollout_errors(
            predictors[name], z[:, : H + 1], proprio[:, : H + 1], actions[:, :H], device, 1
        )
        reach = goal_reaching(enc, predictors[name], tasks, cfg, device, cfg.seed)
        k, n = int(reach["success"].sum()), len(tasks)
        table[name] = {
            "slope": slope(enc, tasks[: cfg.slope_tasks], device),
            "ratio": float(err[-1] / copy[-1]),
            "success": k / n,
            "ci": wilson(k, n),
            "dist": float(reach["final_dist"].mean()),
        }
        curves[name] = landscape(enc, tasks[: cfg.slope_tasks], device)
        print(f"{name}: slope {table[name]['slope']:.2f}, rollout h5 {err[-1]:.3f} (copy {copy[-1]:.3f}), "
              f"goal success {table[name]['success']:.2f} ({time.time() - t0:.0f} s)")  # fmt: skip
        if name != "dino":
            continue
        for i in range(H):
            metrics[f"feat_err_h{i + 1}"] = float(err[i])
            baselines[f"feat_err_h{i + 1}/copy_last"] = float(copy[i])
        if "dino/nomask" in predictors:  # the ablation: the window where the mask matters
            args = (z[:, : H + 1], proprio[:, : H + 1], actions[:, :H], device, num_hist)
            masked = predictors.get("dino/tf", predictors["dino"])  # teacher-forced, with the mask
            err_m, _, _, tf_m = rollout_errors(masked, *args, teacher_forced=True)
            err_nm, _, _, tf_nm = rollout_errors(predictors["dino/nomask"], *args, teacher_forced=True)
            metrics.update(nomask_over_mask_err_h5=float(err_nm[-1] / err_m[-1]), ablation_window=num_hist,
                           tf_loss_mask=tf_m, tf_loss_nomask=tf_nm)  # fmt: skip
        dream_z = rollout_errors(predictors["dino"], z[:4], proprio[:4], actions[:4], device, 1)[
            2
        ]  # (4, T, N, D)
        dream = decode(decoder, torch.cat([z[:4, :1], dream_z], 1), device)  # the start frame, then the dream
        save_rollout_gif(data["frames"][:4], dream, out_dir / "rollout.gif")
        save_rollout_strip(data["frames"][:4], dream, out_dir / "rollout.png")
        save_goal_picture(reach, tasks, out_dir / "goal_reaching.png")
    ceilings = {}
    if cfg.ceiling:  # the same planner and cost, the true simulator in place of the predictor
        for name, enc in encoders.items():
            reach = goal_reaching(enc, None, tasks, cfg, device, cfg.seed)
            k = int(reach["success"].sum())
            table[f"{name}/true"] = {"success": k / len(tasks), "ci": wilson(k, len(tasks)),
                                     "dist": float(reach["final_dist"].mean())}  # fmt: skip
            ceilings[f"goal_success/{name}_true_future"] = k / len(tasks)
            print(f"{name}, true future: goal success {k / len(tasks):.2f} ({time.time() - t0:.0f} s)")
    oracle = goal_reaching(None, None, tasks, cfg, device, cfg.seed)
    k = int(oracle["success"].sum())
    table["oracle"] = {
        "success": k / len(tasks),
        "ci": wilson(k, len(tasks)),
        "dist": float(oracle["final_dist"].mean()),
    }
    save_landscape(curves, NAMES, out_dir / "cost_landscape.png")
    metrics["feat_err_h5_over_copy_last"] = metrics["feat_err_h5"] / baselines["feat_err_h5/copy_last"]
    metrics["goal_success"] = table["dino"]["success"]
    metrics["goal_final_dist"] = table["dino"]["dist"]
    metrics["cost_slope"] = table["dino"]["slope"]
    for name in ("random", "pixels", "oracle"):
        if name in table:
            baselines[f"goal_success/{name}"] = table[name]["success"]
            baselines[f"goal_final_dist/{name}"] = table[name]["dist"]
        if name in ("random", "pixels") and name in table:
            baselines[f"feat_err_h5_over_copy_last/{name}"] = table[name]["ratio"]
            baselines[f"cost_slope/{name}"] = table[name]["slope"]
    baselines |= ceilings
    if "random" in table:
        metrics["goal_success_minus_random_init"] = table["dino"]["success"] - table["random"]["success"]
    if "pixels" in table:
        metrics["goal_success_minus_pixels"] = table["dino"]["success"] - table["pixels"]["success"]
    targets = {k: list(v) for k, v in TARGETS.items() if k in metrics}
    ok = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b}
    passed = len(targets) == len(TARGETS) and all(ok[op](metrics[k], t) for k, (op, t) in targets.items())
    report = {
        "chapter": "5.dino-predictor",
        "quick": cfg.quick,
        "device": str(device),
        "train_seconds": round(float(ckpt["train_seconds"]), 1),
        "validate_seconds": round(time.time() - t0, 1),
        "encoder": ckpt["config"]["encoder"],
        "n_tasks": len(tasks),
        "success_ci95": {name: row["ci"] for name, row in table.items()},
        "metrics": metrics,
        "baselines": baselines,
        "targets": targets,
        "passed": passed,
    }
    (out_dir / "metrics.json").write_text(json.dumps(report, indent=2))
    if len(targets) == len(TARGETS):
        print_tables(metrics, baselines, table, len(tasks))
    if cfg.quick:
        print("\nsmoke run (--quick): this checks the plumbing; the numbers are not the lesson's")
    print(f"\ntrain seconds {ckpt['train_seconds']:.0f}, validate seconds {time.time() - t0:.0f}; "
          f"targets {'PASSED' if passed else 'NOT met'}")  # fmt: skip
    print(
        f"wrote metrics.json, rollout.gif, rollout.png, goal_reaching.png and cost_landscape.png in {out_dir}"
    )


def run(argv=None) -> None:
    """``--part memory``: part 2 (memory/evaluation.py, with its own flags); otherwise part 1's ``main``."""
    part, rest = split_part(argv)
    if part == "memory":
        from memory.evaluation import main as memory_main

        memory_main(rest)
    else:
        main(argv)


if __name__ == "__main__":
    exit_on_user_error(run)
