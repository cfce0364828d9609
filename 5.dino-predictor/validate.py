"""Evaluate chapter 5 on held-out trajectories and goal-reaching tasks (seeds never seen in training).

    uv run validate.py
    uv run validate.py --checkpoint checkpoints/dino_wm.pt --quick

Measures: the feature rollout error at horizons 1..5 against copy-last; the causal-mask ablation (the
same predictor trained without the mask); the encoder comparison (our DINO, the same ViT at random
init, the chapter-1 style codec), each with its rollout error and its CEM-MPC goal-reaching success on
20 seeded episodes. Writes outputs/metrics.json, outputs/rollout.gif and outputs/rollout.png (truth
above the decoded rollout), outputs/goal_reaching.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from evaluate import decode, goal_reaching, load_models, rollout, rollout_errors, save_rollout_gif

from data_utils import load_trajectories, make_tasks
from utils import CKPT_DIR, OUT_DIR, exit_on_user_error, load_checkpoint, pick_device, seed_everything

H, GIF_STEPS, HELDOUT = 5, 10, 10_000  # error horizons, rollout length in the GIF, held-out seed offset
TARGETS = {
    "feat_err_h5_over_copy_last": ("<=", 0.5),
    "goal_success": (">=", 0.8),
    "goal_success_minus_random_init": (">=", 0.2),
    "nomask_over_mask_err_h5": (">=", 1.2),
}
NAMES = {"dino": "our DINO (frozen)", "random": "random-init ViT (frozen)", "codec": "chapter-1 codec"}


@dataclass
class ValConfig:
    """Validation settings; each is a flag (--field-name)."""

    checkpoint: str = str(CKPT_DIR / "dino_wm.pt")
    n_traj: int = 100  # held-out trajectories for the rollout errors
    episodes: int = 20  # goal-reaching tasks per encoder
    mpc_steps: int = 25  # actions executed per episode
    horizon: int = 5  # CEM planning horizon
    samples: int = 64  # CEM samples per iteration
    elites: int = 8
    iters: int = 4  # CEM iterations per plan
    replan_every: int = 2  # execute this many actions, then re-plan
    proprio_cost: float = 0.0  # > 0: add the goal proprio distance to the cost (DINO-WM's full objective)
    seed: int = 0
    device: str = "auto"
    quick: bool = False


QUICK = {
    "n_traj": 8,
    "episodes": 2,
    "mpc_steps": 4,
    "samples": 16,
    "elites": 4,
    "iters": 2,
    "replan_every": 2,
}


def parse_args(argv=None) -> ValConfig:
    """Command-line flags -> ValConfig."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in dataclasses.fields(ValConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            p.add_argument(flag, action="store_true", help="a smoke run: few trajectories and episodes")
        else:
            typ = {"int": int, "float": float, "str": str}[f.type]
            kw = {"choices": ["auto", "cpu", "cuda", "mps"]} if f.name == "device" else {}
            p.add_argument(flag, type=typ, default=f.default, help=f"(default: {f.default})", **kw)
    cfg = ValConfig(**vars(p.parse_args(argv)))
    return dataclasses.replace(cfg, **QUICK) if cfg.quick else cfg


def save_goal_picture(frames: np.ndarray, tasks: np.ndarray, success: np.ndarray, path) -> None:
    """outputs/goal_reaching.png: for 4 episodes, the executed trajectory every 5 steps, goal in green."""
    n = min(4, len(frames))
    idx = list(range(0, frames.shape[1], 5)) + ([frames.shape[1] - 1] if (frames.shape[1] - 1) % 5 else [])
    fig, axes = plt.subplots(n, len(idx), figsize=(1.4 * len(idx), 1.5 * n), squeeze=False)
    for i in range(n):
        for j, t in enumerate(idx):
            ax = axes[i, j]
            ax.imshow(frames[i, t], interpolation="nearest")
            ax.add_patch(plt.Circle(tasks[i, 1] * 64 - 0.5, 3.2, fill=False, color="lime", lw=1.5))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"step {t}", fontsize=8)
        axes[i, 0].set_ylabel("reached" if success[i] else "missed", fontsize=8)
    fig.suptitle("CEM-MPC with our DINO features: the goal image's agent position in green")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def print_tables(metrics: dict, baselines: dict, table: dict) -> None:
    """The targets table, the rollout error per horizon with the ablation, and the encoder comparison."""
    print(f"\n{'metric':34s} {'value':>8s} {'target':>8s}   baseline")
    for key in (
        "feat_err_h5_over_copy_last",
        "goal_success",
        "goal_success_minus_random_init",
        "nomask_over_mask_err_h5",
    ):
        op, t = TARGETS[key]
        base = ", ".join(
            f"{k.split('/')[-1]} {v:.3f}" for k, v in baselines.items() if k.rsplit("/", 1)[0] == key
        )
        print(f"{key:34s} {metrics[key]:8.3f} {op + ' ' + format(t, 'g'):>8s}   {base}")
    print(f"\n{'feature MSE (standardised)':34s}" + "".join(f"{'h' + str(i):>8s}" for i in range(1, H + 1)))
    for label, prefix in (
        ("predictor (causal mask)", "metrics"),
        ("copy-last", "copy_last"),
        ("no causal mask", "no_causal_mask"),
    ):
        src = metrics if prefix == "metrics" else baselines
        keys = [f"feat_err_h{i}" + ("" if prefix == "metrics" else f"/{prefix}") for i in range(1, H + 1)]
        if all(k in src for k in keys):
            print(f"{label:34s}" + "".join(f"{src[k]:8.3f}" for k in keys))
    print(f"\n{'encoder':28s} {'h5 err / copy-last':>19s} {'goal success':>13s} {'final dist':>11s}")
    for name, row in table.items():
        print(f"{NAMES[name]:28s} {row['ratio']:19.3f} {row['success']:13.2f} {row['dist']:11.3f}")


def main(argv=None) -> None:
    """Load the checkpoint, evaluate on held-out data, print the tables, save metrics and pictures."""
    cfg = parse_args(argv)
    device = pick_device(cfg.device)
    seed_everything(cfg.seed)
    ckpt = load_checkpoint(cfg.checkpoint, "dino-wm")
    encoders, predictors, decoder = load_models(ckpt, device)
    world, t0 = ckpt["config"]["world"], time.time()
    data = load_trajectories(world, cfg.n_traj, GIF_STEPS + 1, seed=cfg.seed + HELDOUT, quiet=True)
    proprio, actions = torch.from_numpy(data["proprio"]), torch.from_numpy(data["actions"])
    tasks = make_tasks(world, cfg.episodes, seed=cfg.seed + HELDOUT + 1)
    metrics, baselines, table = {}, {}, {}
    OUT_DIR.mkdir(exist_ok=True)
    for name, enc in encoders.items():
        z = enc.encode(data["frames"], device)  # (B, 1+T, N, D)
        err, copy, _ = rollout_errors(
            predictors[name], z[:, : H + 1], proprio[:, : H + 1], actions[:, :H], device
        )
        reach = goal_reaching(enc, predictors[name], world, tasks, cfg, device, cfg.seed)
        table[name] = {"ratio": float(err[-1] / copy[-1]), "success": float(reach["success"].mean()),
                       "dist": float(reach["final_dist"].mean())}  # fmt: skip
        print(f"{name}: rollout h5 error {err[-1]:.3f} (copy-last {copy[-1]:.3f}), goal success "
              f"{table[name]['success']:.2f} ({time.time() - t0:.0f} s)")  # fmt: skip
        for key, value in table[name].items():
            metrics[f"{name}/{key}"] = value
        if name != "dino":
            continue
        for i in range(H):
            metrics[f"feat_err_h{i + 1}"] = float(err[i])
            baselines[f"feat_err_h{i + 1}/copy_last"] = float(copy[i])
        if "dino/nomask" in predictors:
            err_nm, _, _ = rollout_errors(
                predictors["dino/nomask"], z[:, : H + 1], proprio[:, : H + 1], actions[:, :H], device
            )
            for i in range(H):
                baselines[f"feat_err_h{i + 1}/no_causal_mask"] = float(err_nm[i])
            metrics["nomask_over_mask_err_h5"] = float(err_nm[-1] / err[-1])
        n_gif = 4
        with torch.no_grad():
            dream_z, _ = rollout(
                predictors["dino"],
                z[:n_gif, 0].to(device),
                proprio[:n_gif, 0].to(device),
                actions[:n_gif].to(device),
            )
        dream = np.concatenate(
            [decode(decoder, z[:n_gif, :1], device), decode(decoder, dream_z, device)], axis=1
        )
        save_rollout_gif(data["frames"][:n_gif], dream, OUT_DIR / "rollout.gif")
        strip = np.concatenate(
            [np.concatenate(list(v[0]), axis=1) for v in (data["frames"][:n_gif], dream)], axis=0
        )
        plt.imsave(OUT_DIR / "rollout.png", strip.repeat(2, 0).repeat(2, 1))
        save_goal_picture(reach["frames"], tasks, reach["success"], OUT_DIR / "goal_reaching.png")
    metrics["feat_err_h5_over_copy_last"] = metrics["feat_err_h5"] / baselines["feat_err_h5/copy_last"]
    metrics["goal_success"] = table["dino"]["success"]
    for name in ("random", "codec"):
        if name in table:
            baselines[f"goal_success/{name}"] = table[name]["success"]
            baselines[f"feat_err_h5_over_copy_last/{name}"] = table[name]["ratio"]
    if "random" in table:
        metrics["goal_success_minus_random_init"] = table["dino"]["success"] - table["random"]["success"]
    targets = {k: list(v) for k, v in TARGETS.items() if k in metrics}
    ok = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b}
    passed = len(targets) == len(TARGETS) and all(ok[op](metrics[k], t) for k, (op, t) in targets.items())
    report = {
        "chapter": "5.dino-predictor",
        "quick": cfg.quick,
        "device": str(device),
        "train_seconds": round(float(ckpt["train_seconds"]), 1),
        "validate_seconds": round(time.time() - t0, 1),
        "world": world,
        "encoder": ckpt["config"]["encoder"],
        "metrics": metrics,
        "baselines": baselines,
        "targets": targets,
        "passed": passed,
    }
    (OUT_DIR / "metrics.json").write_text(json.dumps(report, indent=2))
    if len(targets) == len(TARGETS):
        print_tables(metrics, baselines, table)
    print(f"\ntrain seconds {ckpt['train_seconds']:.0f}, validate seconds {time.time() - t0:.0f}; "
          f"targets {'PASSED' if passed else 'NOT met'}")  # fmt: skip
    print(f"wrote {OUT_DIR / 'metrics.json'}, rollout.gif, rollout.png and goal_reaching.png in {OUT_DIR}")


if __name__ == "__main__":
    exit_on_user_error(main)
