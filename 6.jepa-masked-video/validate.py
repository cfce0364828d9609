"""Evaluate chapter 6 on held-out data (seeds never seen in training).

    uv run validate.py
    uv run validate.py --checkpoint checkpoints/jepa.pt --quick

Measures: an attentive probe on the balls' motion direction (8 classes, a label the pre-training never
saw) on frozen V-JEPA tokens vs the same probe on the random-init encoder; the collapse monitor (target
feature spread vs step 0) for V-JEPA and the no-EMA ablation; the masked-prediction loss; V-JEPA 2-AC
rollout error at horizons 1..4 vs copy-last; goal reaching in the open room with the energy planner
(CEM + MPC; feature L1 + read-out position) vs the feature L1 alone, the true simulator (oracle) and
random actions. Writes outputs/metrics.json, masks.png, collapse.png, energy.png, plans.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass

import numpy as np
import torch
from evaluate import (
    clip_features,
    energy_landscape,
    goal_tasks,
    load_models,
    plan_episodes,
    probe_accuracy,
    rollout_errors,
    spread_and_loss,
)
from pictures import save_collapse, save_energy, save_masks, save_plans
from training import encode_trajectories

from data_utils import N_DIRECTIONS, cached, make_ball_clips
from utils import CKPT_DIR, OUT_DIR, UserError, exit_on_user_error, load_checkpoint, pick_device

HELDOUT = 10_000  # held-out data uses seed + 10,000 and up
HORIZON = 4
TARGETS = {
    "probe/acc_gain_over_random_init": (">=", 0.20),
    "spread/ratio_to_step0": (">=", 0.20),
    "ac/err_h4_over_copy_last": ("<=", 0.60),
    "plan/success_open": (">=", 0.70),
}


@dataclass
class ValConfig:
    """Validation settings (each is a flag)."""

    checkpoint: str = str(CKPT_DIR / "jepa.pt")
    n_probe_train: int = 500  # one-ball clips with a direction label for training the probe
    n_probe_test: int = 200
    probe_steps: int = 1000  # at 200 both probes were still learning (V-JEPA 0.54, random init 0.65)
    n_traj: int = 100  # held-out room trajectories for the rollout error
    episodes: int = 20  # goal-reaching episodes
    mpc_steps: int = 15  # each step moves the agent up to 0.1 of the arena
    horizon: int = 3  # CEM plans this many actions ahead
    samples: int = 32
    elites: int = 4
    iters: int = 3
    position_weight: float = 1.0  # the read-out position's share of the energy (0: the features alone)
    threads: int = 1
    seed: int = 0
    device: str = "auto"
    quick: bool = False


QUICK = {"n_probe_train": 48, "n_probe_test": 32, "probe_steps": 5, "n_traj": 8, "episodes": 2}
QUICK |= {"mpc_steps": 2, "samples": 8, "elites": 2, "iters": 1}


def parse_args(argv=None) -> ValConfig:
    """Command-line flags -> ValConfig."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for f in dataclasses.fields(ValConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            parser.add_argument(flag, action="store_true")
        else:
            parser.add_argument(
                flag,
                type={"int": int, "float": float, "str": str}[f.type],
                default=None,
                help=f"(default: {f.default})",
            )
    args = vars(parser.parse_args(argv))
    base = dataclasses.asdict(ValConfig()) | (QUICK if args["quick"] else {})
    cfg = ValConfig(**(base | {k: v for k, v in args.items() if v is not None}))
    for name in ("n_probe_train", "n_probe_test", "n_traj", "episodes", "mpc_steps", "horizon", "samples"):
        if getattr(cfg, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(cfg, name)}")
    if not 1 <= cfg.elites <= cfg.samples:
        raise UserError(f"--elites must be between 1 and --samples ({cfg.samples}), got {cfg.elites}")
    return cfg


def main(argv=None) -> None:
    """Measure everything, print the table, write metrics.json and the pictures."""
    cfg = parse_args(argv)
    torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    ckpt = load_checkpoint(cfg.checkpoint, "jepa-masked-video")
    models, tcfg, s = load_models(ckpt, device), ckpt["config"], cfg.seed + HELDOUT
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    m, base = {}, {}

    # 1. Probe: the balls' direction (a label pre-training never saw), frozen V-JEPA vs random init.
    tr = make_ball_clips(cfg.n_probe_train, tcfg["frames"], s, max_balls=1)
    te = make_ball_clips(cfg.n_probe_test, tcfg["frames"], s + 1, max_balls=1)
    for name, key in (("encoder", "probe/direction_acc"), ("init", "probe/direction_acc/random_init")):
        ftr, fte = (
            clip_features(models[name], tr["frames"], device),
            clip_features(models[name], te["frames"], device),
        )
        acc = probe_accuracy(ftr, tr["labels"], fte, te["labels"], N_DIRECTIONS, cfg.probe_steps, cfg.seed)
        (m if name == "encoder" else base)[key] = acc
    base["probe/direction_acc/chance"] = 1 / N_DIRECTIONS
    m["probe/acc_gain_over_random_init"] = m["probe/direction_acc"] - base["probe/direction_acc/random_init"]

    # 2. Collapse monitor and masked loss on held-out clips of both worlds.
    held = cached("balls", n=32, length=tcfg["frames"], seed=s + 2)["frames"]
    room = cached("room", n=cfg.n_traj, length=tcfg["frames"], seed=s + 3, layout="open")
    sl = spread_and_loss(models, np.concatenate([held, room["frames"][:32]]), device, cfg.seed)
    m["spread/ratio_to_step0"] = sl["spread/encoder"] / sl["spread/init"]
    base["spread/ratio_to_step0/no_ema"] = sl["spread/ablation"] / sl["spread/init"]
    m["masked_loss"] = sl["masked_loss"]

    # 3. V-JEPA 2-AC rollouts vs copy-last.
    z = encode_trajectories(models["encoder"], room["frames"], device, models["z_stats"]).to(device)
    a, p = (torch.as_tensor(room[k]).to(device) for k in ("actions", "proprio"))
    with torch.no_grad():
        err, copy = rollout_errors(models["ac"], z, a, p, min(HORIZON, tcfg["frames"] - 1))
    for h in range(len(err)):
        m[f"ac/err_h{h + 1}"], base[f"ac/err_h{h + 1}/copy_last"] = float(err[h]), float(copy[h])
    m["ac/err_h4_over_copy_last"] = float(err[-1] / copy[-1])

    # 4. Goal reaching with the energy planner, vs random actions.
    starts, goals = goal_tasks(cfg.episodes, s + 4)
    pcfg = dataclasses.asdict(cfg)
    res = plan_episodes(models, starts, goals, device, pcfg)
    m["plan/success_open"], m["plan/final_dist"] = (
        float(res["success"].mean()),
        float(res["final_dist"].mean()),
    )
    for mode in ("features", "oracle", "random"):  # the feature L1 alone, the true simulator, no planning
        other = plan_episodes(models, starts, goals, device, pcfg, mode=mode)
        base[f"plan/success_open/{mode}"] = float(other["success"].mean())
        base[f"plan/final_dist/{mode}"] = float(other["final_dist"].mean())

    save_masks(held[0], OUT_DIR / "masks.png", cfg.seed)
    save_collapse(ckpt["logs"], OUT_DIR / "collapse.png")
    save_energy(
        energy_landscape(models, starts[0], goals[0], device, cfg.position_weight),
        starts[0],
        goals[0],
        OUT_DIR / "energy.png",
    )
    save_plans(res["frames"], goals, res["success"], OUT_DIR / "plans.png")

    ok = {"<=": lambda x, t: x <= t, ">=": lambda x, t: x >= t}
    passed = all(ok[op](m[k], t) for k, (op, t) in TARGETS.items())
    report = {"chapter": "6.jepa-masked-video", "quick": cfg.quick, "device": str(device)}
    report |= {"train_seconds": float(ckpt["train_seconds"]), "metrics": m, "baselines": base}
    report |= {"targets": {k: list(v) for k, v in TARGETS.items()}, "passed": passed}
    (OUT_DIR / "metrics.json").write_text(json.dumps(report, indent=2))

    print(f"\n{'metric':<34} {'value':>8}  {'target':>8}  baseline")
    for k, v in m.items():
        target = " ".join(map(str, TARGETS[k])) if k in TARGETS else ""
        extra = ", ".join(
            f"{b.split('/')[-1]} {bv:.3f}" for b, bv in base.items() if b.rsplit("/", 1)[0] == k
        )
        print(f"{k:<34} {v:>8.3f}  {target:>8}  {extra}")
    print(f"passed: {passed} (train {ckpt['train_seconds']:.0f} s); wrote {OUT_DIR / 'metrics.json'}")


if __name__ == "__main__":
    exit_on_user_error(main)
