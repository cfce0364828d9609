"""Evaluate the learner's checkpoint on fresh toroidal-dot episodes of another seed.

    uv run validate.py            # after uv run train.py (and, for the comparison table, train.py --compare)
    uv run validate.py --quick

For every held-out step it asks the predictor what happens under *both* actions and compares
with the truth (the world is copied and stepped each way): the dot position (in 224-px units),
the explained variance R^2 in patch space, whether the action classifier names the action, and the
seed's attention metrics (learner/evaluation.py). When outputs/compare.json exists it also prints the
equal-budget comparisons: uncertainty vs random actions, FiLM vs concatenation, the action loss.
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
from learner.compare import SHOWN
from learner.evaluation import HELDOUT_SEED_OFFSET, evaluate, rollout_dataset
from learner.logs import to_image
from learner.persistence import load_models
from learner.utils import (
    HERE,
    UserError,
    command,
    exit_on_user_error,
    given_flags,
    pick_device,
    preprocess_frame,
    seed_everything,
    set_threads,
)
from robots import ToroidalDotConfig, ToroidalDotEnvironment

TARGETS = {"pos_within_2px/both_actions": [">=", 0.95], "r2_patch": [">=", 0.9], "action_acc": [">=", 0.95]}


@dataclass
class ValConfig:
    """Settings of an evaluation."""

    checkpoint: str | None = None  # default: <out>/checkpoints/toroidal_dot, where train.py writes it
    out: str = str(HERE)  # output root: reads checkpoints/, writes outputs/
    episodes: int = 20
    episode_len: int = 25
    quick: bool = False
    device: str = "auto"
    seed: int = 0
    threads: int = 0  # torch threads; 0: the cores free right now (see utils.choose_threads)


QUICK = {"episodes": 4, "episode_len": 10}


def parse_args(argv=None) -> ValConfig:
    """Command line -> ValConfig."""
    d = ValConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--checkpoint", default=None, help="the learner's checkpoint folder (default <out>/checkpoints/...)"
    )
    p.add_argument(
        "--out", default=d.out, help="output root for checkpoints/ and outputs/ (default: this folder)"
    )
    p.add_argument(
        "--episodes", type=int, default=d.episodes, help=f"held-out episodes (default {d.episodes})"
    )
    p.add_argument("--quick", action="store_true", help="a smoke run: 4 episodes of 10 steps")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default=d.device)
    p.add_argument(
        "--seed", type=int, default=d.seed, help=f"held-out world seed is seed + {HELDOUT_SEED_OFFSET}"
    )
    p.add_argument("--threads", type=int, default=d.threads, help="torch threads (default 0: the free cores)")
    cfg, typed = ValConfig(**vars(p.parse_args(argv))), given_flags(p, argv)
    if cfg.quick:  # --quick shrinks only what was not typed (--episode-len is not a flag)
        cfg = dataclasses.replace(cfg, **{k: v for k, v in QUICK.items() if k not in typed})
    if cfg.checkpoint is None:
        cfg = dataclasses.replace(cfg, checkpoint=str(Path(cfg.out) / "checkpoints" / "toroidal_dot"))
    if "checkpoint" in typed and not Path(cfg.checkpoint).exists():  # a typo, not a missing training run
        raise UserError(f"no such file: {cfg.checkpoint}")
    if cfg.episodes < 1:
        raise UserError(f"--episodes must be at least 1, got {cfg.episodes}")
    return cfg


def load_learner_models(folder: str, device) -> tuple:
    """(config, codec, predictor, state) from a checkpoint folder, with one-line errors."""
    path = Path(folder)
    if path.is_file():
        raise UserError(f"{path} is a file: --checkpoint takes the learner's checkpoint folder")
    try:
        cfg, codec, pred, state = load_models(path, 2, log=lambda m: print(f"note: {m}"))
    except FileNotFoundError as e:
        raise UserError(f"no checkpoint in {path}: run `{command('train.py')}` first") from e
    except ValueError as e:
        raise UserError(str(e)) from e
    if cfg.ROBOT_NAME != "toroidal_dot":
        raise UserError(f"{path} was trained on {cfg.ROBOT_NAME!r}; validate.py evaluates the toroidal dot")
    return cfg, codec.to(device), pred.to(device), state


def save_picture(data: dict, preds: torch.Tensor, out: Path, n: int = 6) -> None:
    """Rows of: last frame | truth if stay | prediction if stay | truth if right | prediction if right."""
    import cv2

    rows = []
    for i in np.linspace(0, len(preds) - 1, n).astype(int):
        tiles = [data["hist"][i, -1], data["next"][i, 0], preds[i, 0], data["next"][i, 1], preds[i, 1]]
        rows.append(
            np.concatenate(
                [np.pad(to_image(t, 4), ((2, 2), (2, 2), (0, 0)), constant_values=90) for t in tiles], axis=1
            )
        )
    grid = np.concatenate(rows, axis=0)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))


def main(argv=None) -> None:
    """Load, evaluate, print the table, write metrics.json and the picture."""
    cfg = parse_args(argv)
    set_threads(cfg.threads)  # first line of output: how many threads, and why
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    t0 = time.perf_counter()
    wm, codec, pred, state = load_learner_models(cfg.checkpoint, device)
    table = torch.tensor([[0.0], [1.0]])
    data = rollout_dataset(
        cfg.seed, cfg.episodes, cfg.episode_len, wm.MODEL_IMG_SIZE, wm.PREDICTION_HISTORY_SIZE
    )
    metrics, baselines, preds = evaluate(codec, pred, table, data, device)
    metrics["loop_steps_per_second"] = state["step"] / max(state["train_seconds"], 1e-9)
    baselines["loop_steps_per_second/robot_only"] = robot_only_rate()
    passed = all({"<=": metrics[k] <= t, ">=": metrics[k] >= t}[op] for k, (op, t) in TARGETS.items())
    out_dir = Path(cfg.out) / "outputs"
    save_picture(data, preds, out_dir / "predictions.png")
    report = {
        "chapter": "9.jetbot-adaptive",
        "quick": cfg.quick,
        "device": str(device),
        "train_seconds": state["train_seconds"],
        "train_steps": state["step"],
        "metrics": metrics,
        "baselines": baselines,
        "targets": TARGETS,
        "passed": passed,
    }
    compare_json = out_dir / "compare.json"
    if compare_json.exists():
        report["comparisons"] = json.loads(compare_json.read_text())
    (out_dir / "metrics.json").write_text(json.dumps(report, indent=2))
    print_table(metrics, baselines)
    print(f"({len(preds)} held-out steps x 2 actions; picture: outputs/predictions.png)")
    if "comparisons" in report:
        print_comparisons(report["comparisons"])
    else:
        print(f"\n(no comparisons yet: `{command('train.py', '--compare')}` writes them)")
    if cfg.quick:
        print("\nsmoke run (--quick): this checks the plumbing; the numbers are not the lesson's")
    print(f"\ntrain seconds {state['train_seconds']:.0f}, validate seconds {time.perf_counter() - t0:.0f}; "
          f"targets {'PASSED' if passed else 'NOT met'}")  # fmt: skip


def print_table(metrics: dict, baselines: dict) -> None:
    """The metrics as an aligned table: value, target, and every baseline of the same metric."""
    print(f"\n{'metric':32s} {'value':>8s} {'target':>8s}   baseline")
    for key, value in metrics.items():
        tgt = f"{TARGETS[key][0]} {TARGETS[key][1]:g}" if key in TARGETS else ""
        bl = ", ".join(
            f"{k[len(key) + 1 :]} {v:.3g}"
            for k, v in baselines.items()
            if k.startswith(key + "/") and "/" not in k[len(key) + 1 :]
        )
        print(f"{key:32s} {value:8.3f} {tgt:>8s}   {bl}")


COMPARE_COLUMNS = {  # metric -> column title of the comparison table
    "pos_within_2px/action_0": "2px stay",
    "pos_within_2px/action_1": "2px move",
    "pos_err_px/median": "med px",
    "r2_patch": "R2",
    "action_acc": "act acc",
    "attention/APA": "APA",
}


def print_comparisons(c: dict) -> None:
    """The equal-budget comparisons of train.py --compare in one table: within 2 px for both actions
    along the way (the learning curve, ending with the final score), then the final scores."""
    curve = f" (the curve before the end: {c['curve_held_out_steps']})" if "curve_held_out_steps" in c else ""
    print(f"\ncomparisons: trained codec + fresh predictor, {c['steps']} loop steps each, seed {c['seed']}, "
          f"{c['held_out_steps']} held-out steps{curve}")  # fmt: skip
    steps = [p["step"] for p in next(iter(c["variants"].values()))["curve"]]
    head = [f"2px@{s}" for s in steps] + list(COMPARE_COLUMNS.values()) + ["move %", "updates"]
    print(f"{'variant':15s}" + "".join(f"{h:>9s}" for h in head))
    for name, r in c["variants"].items():
        vals = [p[SHOWN[0]] for p in r["curve"]] + [r["metrics"][k] for k in COMPARE_COLUMNS]
        row = "".join(f"{v:9.3f}" for v in vals) + f"{100 * r['move_share']:9.0f}{r['predictor_updates']:9d}"
        print(f"{name:15s}{row}")


def robot_only_rate(steps: int = 300) -> float:
    """Steps per second of the bare toroidal-dot loop (observe, resize, act): the ceiling of the learner."""
    env = ToroidalDotEnvironment(ToroidalDotConfig(seed=0))
    t = time.perf_counter()
    for i in range(steps):
        preprocess_frame(env.step(i % 2)[0], 64)
    return steps / (time.perf_counter() - t)


if __name__ == "__main__":
    exit_on_user_error(main)
