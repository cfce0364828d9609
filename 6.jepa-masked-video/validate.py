"""Evaluate chapter 6 on held-out data (seeds never seen in training).

    uv run validate.py
    uv run validate.py --checkpoint checkpoints/jepa.pt --quick

Measures: an attentive probe, trained on few labelled clips, of which way the shoulder turns in each
half of a clip (a label the pre-training never saw) on frozen V-JEPA tokens vs the same probe on the
random-init encoder, over 3 probe seeds; the collapse monitor (feature spread vs step 0) for V-JEPA and
the no-EMA ablation; the masked-prediction loss of the saved context encoder; the energy's slope before
any predictor; V-JEPA 2-AC rollout error at horizons 1..4 vs copy-last; goal reaching from a goal
image under another scene with CEM-MPC on the L1 energy alone, vs the random-init encoder and the
oracle (true dynamics, true distance). Writes outputs/metrics.json, masks.png, collapse.png,
energy_landscape.png, plans.png.
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
from evaluate import (
    clip_features,
    goal_reaching,
    load_models,
    motion_labels,
    probe_accuracy,
    rollout_errors,
    spread_and_loss,
    wilson,
)
from landscape import landscape, save_landscape, slope
from pictures import save_collapse, save_masks, save_plans
from training import encode_trajectories

from data_utils import load_trajectories, make_tasks
from utils import (
    UserError,
    exit_on_user_error,
    given_flags,
    load_checkpoint,
    output_root,
    pick_device,
    set_threads,
)

HELDOUT = 10_000  # held-out data and tasks use seed + 10,000 and up
HORIZON = 4
TARGETS = {
    "plan/success_energy_only": (">=", 0.80),
    "plan/gain_over_random_init": (">=", 0.30),
    "probe/acc_gain_over_random_init": (">=", 0.20),
    "spread/ratio_to_step0": (">=", 0.20),
    "spread/no_ema_ratio_to_step0": ("<=", 0.20),
    "ac/err_h4_over_copy_last": ("<=", 0.60),
}


@dataclass
class ValConfig:
    """Validation settings (each is a flag)."""

    checkpoint: str = ""  # default: <out>/checkpoints/jepa.pt, where train.py writes it
    n_probe_train: int = 200  # labelled clips for training the probe (few labels)
    n_probe_test: int = 300
    probe_steps: int = 600
    probe_seeds: int = 3
    n_traj: int = 64  # held-out trajectories for the rollout error
    episodes: int = 50  # goal-reaching tasks
    mpc_steps: int = 16  # actions executed per episode
    horizon: int = 4  # CEM plans this many actions ahead
    samples: int = 48
    elites: int = 6
    iters: int = 3
    replan_every: int = 2  # execute this many actions, then re-plan
    slope_tasks: int = 20
    ceiling: bool = False  # also plan with the true simulator in place of each 2-AC predictor (slow)
    threads: int = 0  # torch threads; 0: the cores free right now (see utils.choose_threads)
    seed: int = 0
    device: str = "auto"
    out: str = ""  # output root: reads checkpoints/, writes data/ and outputs/ ("": this chapter's folder)
    quick: bool = False


QUICK = {"n_probe_train": 24, "n_probe_test": 16, "probe_steps": 5, "probe_seeds": 2, "n_traj": 8}
QUICK |= {"episodes": 2, "mpc_steps": 2, "samples": 8, "elites": 2, "iters": 1, "slope_tasks": 2}


def parse_args(argv=None) -> ValConfig:
    """Command-line flags -> ValConfig."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for f in dataclasses.fields(ValConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            helps = {
                "quick": "a smoke run: few clips, tasks and steps",
                "ceiling": "also plan each encoder's energy with the true simulator in place of "
                "the 2-AC predictor: the ceiling its features allow (slow: renders every candidate)",
            }
            parser.add_argument(flag, action="store_true", help=helps[f.name])
        else:
            kind = {"int": int, "float": float, "str": str}[f.type]
            kw = {"choices": ["auto", "cpu", "cuda", "mps"]} if f.name == "device" else {}
            parser.add_argument(flag, type=kind, default=f.default, help=f"(default: {f.default})", **kw)
    cfg, typed = ValConfig(**vars(parser.parse_args(argv))), given_flags(parser, argv)
    if cfg.quick:  # --quick shrinks only what was not typed
        cfg = dataclasses.replace(cfg, **{k: v for k, v in QUICK.items() if k not in typed})
    if "checkpoint" in typed and not Path(cfg.checkpoint).exists():  # a typo, not a missing training run
        raise UserError(f"no such file: {cfg.checkpoint}")
    sizes = ("n_probe_train", "n_probe_test", "probe_steps", "probe_seeds", "n_traj", "episodes")
    for name in (*sizes, "mpc_steps", "horizon", "samples", "iters", "slope_tasks"):
        if getattr(cfg, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(cfg, name)}")
    if cfg.slope_tasks > cfg.episodes:
        raise UserError(f"--slope-tasks must be at most --episodes ({cfg.episodes}), got {cfg.slope_tasks}")
    if not 1 <= cfg.elites <= cfg.samples:
        raise UserError(f"--elites must be between 1 and --samples ({cfg.samples}), got {cfg.elites}")
    if not 1 <= cfg.replan_every <= cfg.horizon:
        raise UserError(f"--replan-every must be between 1 and --horizon ({cfg.horizon})")
    return cfg


def probe(models, tcfg, cfg, device, s) -> tuple[dict, dict]:
    """The few-label motion probe, frozen V-JEPA vs random init, mean and spread over probe seeds."""
    n = cfg.n_probe_train + cfg.n_probe_test
    data = load_trajectories(
        n, tcfg["frames"], seed=s + 2, quiet=True, data_dir=output_root(cfg.out) / "data"
    )
    y = motion_labels(data["q"])
    tr, te = slice(0, cfg.n_probe_train), slice(cfg.n_probe_train, n)
    acc = {}
    for name in ("encoder", "init"):
        f = clip_features(models[name], data["frames"], device)  # (N, tokens, D)
        acc[name] = np.array(
            [
                probe_accuracy(f[tr], y[tr], f[te], y[te], 4, cfg.probe_steps, seed)
                for seed in range(cfg.probe_seeds)
            ]
        )
    gain = acc["encoder"] - acc["init"]
    m = {
        "probe/motion_acc": float(acc["encoder"].mean()),
        "probe/motion_acc_std": float(acc["encoder"].std()),
    }
    m |= {"probe/acc_gain_over_random_init": float(gain.mean()), "probe/acc_gain_std": float(gain.std())}
    base = {"probe/motion_acc/random_init": float(acc["init"].mean())}
    base["probe/motion_acc/majority_class"] = float(np.bincount(y[te], minlength=4).max() / len(y[te]))
    return m, base


def main(argv=None) -> None:
    """Measure everything, print the table, write metrics.json and the pictures."""
    cfg = parse_args(argv)
    set_threads(cfg.threads)  # first line of output: how many threads, and why
    device, t0 = pick_device(cfg.device), time.time()
    root = output_root(cfg.out)  # reads checkpoints/, writes data/ and outputs/ under it
    ckpt = load_checkpoint(cfg.checkpoint or root / "checkpoints" / "jepa.pt", "jepa-masked-video")
    models, tcfg, s = load_models(ckpt, device), ckpt["config"], cfg.seed + HELDOUT
    out_dir = root / "outputs"
    out_dir.mkdir(parents=True, exist_ok=True)
    m, base = probe(models, tcfg, cfg, device, s)  # 1. few-label probe

    # 2. Collapse monitor and masked loss on held-out clips; 3. V-JEPA 2-AC rollouts vs copy-last.
    held = load_trajectories(
        cfg.n_traj, max(tcfg["frames"], HORIZON + 1), seed=s + 3, quiet=True, data_dir=root / "data"
    )
    sl = spread_and_loss(
        models,
        held["frames"][:32, : tcfg["frames"]],
        held["frames_alt"][:32, : tcfg["frames"]],
        device,
        cfg.seed,
    )
    m["spread/ratio_to_step0"] = sl["spread/encoder"] / sl["spread/init"]
    m["spread/no_ema_ratio_to_step0"] = sl["spread/ablation"] / sl["spread/init"]
    m["masked_loss"], base["masked_loss/ema_as_context"] = sl["masked_loss"], sl["masked_loss/ema_as_context"]
    a, p = (torch.as_tensor(held[k]).to(device) for k in ("actions", "proprio"))
    for name, enc in (("jepa", "encoder"), ("init", "init")):
        z = encode_trajectories(models[enc], held["frames"], device, models["z_stats"][name]).to(device)
        err, copy = rollout_errors(models["ac"][name], z, a, p, HORIZON)
        if name == "jepa":
            for h in range(HORIZON):
                m[f"ac/err_h{h + 1}"], base[f"ac/err_h{h + 1}/copy_last"] = float(err[h]), float(copy[h])
            m["ac/err_h4_over_copy_last"] = float(err[-1] / copy[-1])
        else:
            base["ac/err_h4_over_copy_last/random_init"] = float(err[-1] / copy[-1])

    # 4. The energy's slope before any predictor, then goal reaching from the energy alone.
    tasks = make_tasks(cfg.episodes, seed=s + 4)
    curves, runs = {}, {}
    for name, enc in (("jepa", "encoder"), ("init", "init")):
        stats = models["z_stats"][name]
        e = slope(models[enc], stats, tasks[: cfg.slope_tasks], device)
        (m if name == "jepa" else base)["energy/slope" + ("" if name == "jepa" else "/random_init")] = e
        curves["V-JEPA" if name == "jepa" else "random init"] = landscape(
            models[enc], stats, tasks[: cfg.slope_tasks], device
        )
        runs[name] = goal_reaching(models[enc], models["ac"][name], stats, tasks, cfg, device, cfg.seed)
    runs["oracle"] = goal_reaching(None, None, None, tasks, cfg, device, cfg.seed)
    n, ci = len(tasks), {}
    for name, r in runs.items():
        k = int(r["success"].sum())
        ci[name] = wilson(k, n)
        key = ("plan/success_energy_only", "plan/final_dist")
        suffix = {"jepa": "", "init": "/random_init", "oracle": "/oracle"}[name]
        (m if name == "jepa" else base)[key[0] + suffix] = k / n
        (m if name == "jepa" else base)[key[1] + suffix] = float(r["final_dist"].mean())
    m["plan/gain_over_random_init"] = (
        m["plan/success_energy_only"] - base["plan/success_energy_only/random_init"]
    )
    if cfg.ceiling:  # the same planner and energy, the true simulator in place of the predictor
        for name, enc in (("jepa", "encoder"), ("init", "init")):
            r = goal_reaching(models[enc], None, models["z_stats"][name], tasks, cfg, device, cfg.seed)
            label = {"jepa": "jepa", "init": "random_init"}[name] + "_true_future"
            base[f"plan/success_energy_only/{label}"] = float(r["success"].mean())
            base[f"plan/final_dist/{label}"] = float(r["final_dist"].mean())
            ci[label] = wilson(int(r["success"].sum()), n)

    save_masks(
        held["frames"][0, : tcfg["frames"]],
        out_dir / "masks.png",
        models["encoder"].grid(tcfg["frames"]),
        cfg.seed,
    )
    save_collapse(ckpt["logs"], out_dir / "collapse.png")
    save_landscape(curves, out_dir / "energy_landscape.png")
    save_plans(runs["jepa"], out_dir / "plans.png")

    ok = {"<=": lambda x, t: x <= t, ">=": lambda x, t: x >= t}
    passed = all(ok[op](m[k], t) for k, (op, t) in TARGETS.items())
    seconds = time.time() - t0
    report = {"chapter": "6.jepa-masked-video", "quick": cfg.quick, "device": str(device)}
    report |= {"train_seconds": float(ckpt["train_seconds"]), "validate_seconds": round(seconds, 1)}
    report |= {"n_tasks": n, "success_ci95": ci, "metrics": m, "baselines": base}
    report |= {"targets": {k: list(v) for k, v in TARGETS.items()}, "passed": passed}
    (out_dir / "metrics.json").write_text(json.dumps(report, indent=2))

    print(f"\n{'metric':<34} {'value':>8}  {'target':>8}  baseline")
    for k, v in m.items():
        target = " ".join(map(str, TARGETS[k])) if k in TARGETS else ""
        extra = ", ".join(
            f"{b.split('/')[-1]} {bv:.3f}" for b, bv in base.items() if b.rsplit("/", 1)[0] == k
        )
        print(f"{k:<34} {v:>8.3f}  {target:>8}  {extra}")
    print(f"({n} held-out tasks; success = end-effector within 0.06 of the goal's; 95 % Wilson intervals: "
          + ", ".join(f"{k} {lo:.2f}-{hi:.2f}" for k, (lo, hi) in ci.items()) + ")")  # fmt: skip
    if cfg.quick:
        print("\nsmoke run (--quick): this checks the plumbing; the numbers are not the lesson's")
    print(f"\ntrain seconds {ckpt['train_seconds']:.0f}, validate seconds {seconds:.0f}; "
          f"targets {'PASSED' if passed else 'NOT met'}")  # fmt: skip
    print(f"wrote metrics.json, masks.png, collapse.png, energy_landscape.png and plans.png in {out_dir}")


if __name__ == "__main__":
    exit_on_user_error(main)
