"""Evaluate chapter 3 on held-out random-action trajectories (a seed never seen in training).

    uv run validate.py
    uv run validate.py --checkpoint checkpoints/action_dynamics.pt --quick

From one true start frame, every model dreams 10 steps open loop under the true actions; the dot or the
agent is located in each decoded frame and compared with the simulator's true position. Baselines:
copy-last (nothing moves), the same model fed shuffled actions, the codec floor (decoding the true
next frames) and erased (a blank dream: where the tracker finds no object it falls back to the frame
centre, and the vanished_10step column says how often that happened). Also: action-direction accuracy
and the counterfactual spread. Writes outputs/metrics.json, outputs/counterfactual_{dot,wall}.png (one
start, every action, truth beside the dream), under --out DIR if given (its checkpoints/ then holds the
default checkpoint).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from evaluate import MAIN, action_set, decode, direction_accuracy, dream, encode, load_models, simulate_from
from tqdm import tqdm

from data_utils import ACTION_NAMES, WORLDS, load_trajectories, position_error
from models import counterfactual_spread
from utils import (
    OUT_HELP,
    UserError,
    exit_on_user_error,
    given_flags,
    load_checkpoint,
    output_root,
    pick_device,
    seed_everything,
    set_threads,
)

HORIZON, HELDOUT_SEED_OFFSET = 10, 10_000
TARGETS = {
    "dot/pos_err_10step_px": ("<=", 1.5),
    "dot/action_direction_acc": (">=", 0.95),
    "dot/shuffled_over_model_10step": (">=", 3.0),
    "wall/pos_err_10step_px": ("<=", 3.0),
    "wall/shuffled_over_model_10step": (">=", 3.0),
}


@dataclass
class ValConfig:
    """Validation settings (each is a flag)."""

    checkpoint: str = ""  # "": the one train.py writes, <out>/checkpoints/action_dynamics.pt
    n_traj: int = 200  # held-out trajectories per world
    threads: int = 0  # torch threads; 0: the cores free right now
    seed: int = 0
    device: str = "auto"
    out: str = ""  # the output root for data/, checkpoints/ and outputs/ ("": this chapter's folder)
    quick: bool = False


def parse_args(argv=None) -> ValConfig:
    """Command-line flags -> ValConfig."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--checkpoint",
        default="",
        help="written by train.py (default: checkpoints/action_dynamics.pt under --out)",
    )
    p.add_argument("--n-traj", type=int, default=200, help="held-out trajectories per world (default: 200)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: 0, the cores free now)")
    p.add_argument("--seed", type=int, default=0, help="held-out data uses seed + 10000 (default: 0)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--out", default="", help=OUT_HELP)
    p.add_argument("--quick", action="store_true", help="20 held-out trajectories per world (unless given)")
    cfg = ValConfig(**vars(p.parse_args(argv)))
    cfg.checkpoint = cfg.checkpoint or str(output_root(cfg.out) / "checkpoints" / "action_dynamics.pt")
    if cfg.quick and "n_traj" not in given_flags(p, argv):
        cfg.n_traj = 20
    if cfg.n_traj < 1:
        raise UserError(f"--n-traj must be at least 1 (got {cfg.n_traj})")
    return cfg


def errors_by_horizon(frames: np.ndarray, positions: np.ndarray, world: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean position error (px) per step, and how often the tracker fell back to the frame centre.

    frames (B, S, 64, 64, 3), positions (B, S, 2) -> errors (S,) and vanished (S,): the fraction of the B
    frames in which no object was found (each counted at the frame centre: the erased baseline, about 24 px
    from the dot's true position and 21 px from the disk's, which the walls keep nearer the centre).
    """
    each = [position_error(frames[:, h], positions[:, h], world) for h in range(len(positions[0]))]
    return np.array([e.mean() for e, _ in each]), np.array([v.mean() for _, v in each])


def true_spread(world: str, codec, data: dict, choices: torch.Tensor, device, n: int = 32, steps: int = 3):
    """The counterfactual spread of the real world: the scale for a model's counterfactual_spread.

    The first ``n`` held-out starts, each action of ``choices`` (K of them) held for ``steps`` steps in the
    simulator; the final frames encoded by the codec; the std across actions of those tokens, averaged
    over tokens and starts, exactly as counterfactual_spread computes it on the dreams."""
    n = min(n, len(data["positions"]))  # --quick holds fewer than 32 trajectories
    finals = [
        simulate_from(world, data["positions"][i, 0], a[None].expand(steps, *a.shape).numpy())[0][-1]
        for i in range(n)
        for a in choices.cpu()
    ]  # n*K frames (64, 64, 3) uint8, start-major like counterfactual_spread's batch
    tok = encode(codec, np.stack(finals)[:, None], device)[:, 0]  # (n*K, N, P)
    return tok.view(n, len(choices), *tok.shape[1:]).std(dim=1).mean().item()


def evaluate_world(world, models, codec, data, device, seed) -> tuple[dict, dict]:
    """Every metric of one world: metrics[f"{world}/{name}/..."] and baselines[f"{world}/.../name"]."""
    tok = encode(codec, data["frames"], device)  # (B, 1+H, N, P)
    acts = torch.from_numpy(data["actions"]).to(device)  # (B, H[, A])
    truth_pos = data["positions"][:, 1:]  # (B, H, 2)
    shuffled = acts[torch.from_numpy(np.random.default_rng(seed).permutation(len(acts)))]
    choices = action_set(world).to(device)
    k, keep = len(choices), [0, HORIZON - 1]  # keep: the steps reported, 1 and 10 (0-based indices)
    metrics, base = {}, {}
    mine = {key: model for key, model in models.items() if key.startswith(world + "/")}
    for key, model in tqdm(
        mine.items(), desc=f"dream {world}: 10 steps, shuffled, every action", leave=False
    ):
        # decode only the steps the tables report (1 and 10): the other 8 would be decoded for nothing
        err, gone = errors_by_horizon(
            dream(model, codec, tok[:, 0], acts, steps=keep), truth_pos[:, keep], world
        )
        shuf, _ = errors_by_horizon(
            dream(model, codec, tok[:, 0], shuffled, steps=keep), truth_pos[:, keep], world
        )
        each = choices.repeat(len(acts), *[1] * (choices.dim() - 1))[:, None]  # (B*K, 1[, A]) every action
        one = dream(model, codec, tok[:, 0].repeat_interleave(k, 0), each)  # (B*K, 1, 64, 64, 3)
        metrics[f"{key}/pos_err_1step_px"] = float(err[0])
        metrics[f"{key}/pos_err_10step_px"] = float(err[1])
        metrics[f"{key}/vanished_10step"] = float(gone[1])  # the tracker's fallback: the object was erased
        if model.head_kind == "regression":  # what snapping to the FSQ grid buys
            raw = dream(model, codec, tok[:, 0], acts, snap=False, steps=keep)
            metrics[f"{key}/pos_err_10step_no_snap_px"] = float(
                errors_by_horizon(raw, truth_pos[:, keep], world)[0][1]
            )
        metrics[f"{key}/shuffled_err_10step_px"] = float(shuf[1])
        metrics[f"{key}/shuffled_over_model_10step"] = float(shuf[1] / max(err[1], 1e-6))
        acc, stays, n_blocked = direction_accuracy(
            world, data["positions"][:, 0], one.reshape(len(acts), k, 64, 64, 3), choices.cpu()
        )
        metrics[f"{key}/action_direction_acc"] = acc
        if world == "wall":  # pushes into a wall: does the dream keep the disk there? (no target)
            metrics[f"{key}/blocked_stays_acc"] = stays
            base[f"{world}/blocked_stays_acc/pushes"] = n_blocked
        if key == f"{world}/{MAIN}":  # 32 starts, every action held 3 steps: how far apart are the dreams?
            metrics[f"{key}/counterfactual_spread"] = counterfactual_spread(model, tok[:32, 0], choices, 3)
    base[f"{world}/counterfactual_spread/truth"] = true_spread(world, codec, data, choices, device)
    still = np.repeat(data["frames"][:, :1], len(keep), axis=1)  # copy-last: the start frame forever
    floor = decode(codec, tok[:, 1:][:, keep])  # what the codec alone can do with the true future
    erased = np.zeros_like(still)  # a dream that erased the object: the tracker's fallback everywhere
    for name, frames in (("copy_last", still), ("codec_floor", floor), ("erased", erased)):
        e, _ = errors_by_horizon(frames, truth_pos[:, keep], world)
        base[f"{world}/pos_err_1step_px/{name}"] = float(e[0])
        base[f"{world}/pos_err_10step_px/{name}"] = float(e[1])
    return metrics, base


def largest_move_per_axis(positions: np.ndarray, world: str) -> float:
    """The largest true move (px) along one axis in one step: positions (B, S, 2) -> a float."""
    steps = np.abs(np.diff(positions, axis=1))  # (B, S-1, 2)
    if world == "dot":
        steps = np.minimum(steps, 64 - steps)  # a wrap across the edge is a 2-px move, not 62
    return float(steps.max())


def save_counterfactual(world, model, codec, data, device, out_dir, steps: int = 6) -> None:
    """out_dir/counterfactual_{world}.png: one start frame, each row one action held for ``steps`` steps;
    left the simulator's truth, right the model's dream, 3x upscaled."""
    choices = action_set(world)
    start = encode(codec, data["frames"][:1], device)[:, 0].repeat(len(choices), 1, 1)  # (K, N, P)
    held = choices[:, None].expand(-1, steps, *choices.shape[1:]).to(device)  # (K, steps[, A])
    pred = dream(model, codec, start, held)  # (K, steps, 64, 64, 3)
    truth = (
        np.stack([simulate_from(world, data["positions"][0, 0], a.cpu().numpy())[0] for a in held]) / 255.0
    )
    gap = np.ones((len(choices), steps, 64, 4, 3))  # white separators between frames
    row = lambda v: np.concatenate(np.concatenate([v, gap], axis=3).transpose(1, 0, 2, 3, 4), axis=2)  # noqa: E731
    img = np.concatenate([row(truth), np.ones((len(choices), 64, 16, 3)), row(pred)], axis=2)
    fig, ax = plt.subplots(figsize=(14, 1.3 * len(choices)))
    ax.imshow(np.concatenate(list(img), axis=0), interpolation="nearest")
    # round, then + 0.0: cos(90 degrees) is -4e-8 in float32, which would print as "-0.00"
    if world == "dot":
        labels = ACTION_NAMES
    else:
        fan = [[round(v, 2) + 0.0 for v in a] for a in choices.tolist()]
        labels = [f"({a[0]:+.2f}, {a[1]:+.2f})" for a in fan]
    ax.set_yticks(np.arange(len(choices)) * 64 + 32, labels)
    ax.set_xticks([steps * 34, steps * 68 + 8 + steps * 34], ["truth (simulator)", f"dream ({MAIN})"])
    ax.set_title(f"{world}: the same start frame, {len(choices)} actions, each held for {steps} steps")
    fig.tight_layout()
    fig.savefig(out_dir / f"counterfactual_{world}.png", dpi=90)
    plt.close(fig)


def print_tables(metrics: dict, baselines: dict, steps: dict, moves: dict) -> None:
    """The targets table (metric, value, target, baseline), then every model side by side with its steps."""
    print(f"\n{'metric (conditioning: ' + MAIN + ')':36s} {'value':>8s} {'target':>8s}   baseline")
    for world in WORLDS:
        for m in (
            "pos_err_1step_px",
            "pos_err_10step_px",
            "action_direction_acc",
            "blocked_stays_acc",
            "shuffled_over_model_10step",
            "counterfactual_spread",
        ):
            key = f"{world}/{m}"
            if f"{world}/{MAIN}/{m}" not in metrics:  # blocked_stays_acc: the point mass only
                continue
            value = metrics[f"{world}/{MAIN}/{m}"]
            tgt = f"{TARGETS[key][0]} {TARGETS[key][1]:g}" if key in TARGETS else ""
            bl = ", ".join(
                f"{k.rsplit('/', 1)[1]} {v:.2f}" for k, v in baselines.items() if k.rsplit("/", 1)[0] == key
            )
            if m == "action_direction_acc":
                bl = "chance 0.20" if world == "dot" else "chance 0.25"
            if m == "counterfactual_spread":  # the same spread on the simulator's futures, encoded
                bl = f"truth {baselines[key + '/truth']:.3f}"
            if m == "blocked_stays_acc":  # copy-last never moves, so it always 'stays'
                bl = f"copy_last 1.00, over {baselines[key + '/pushes']:.0f} blocked pushes"
            print(f"{key:36s} {value:8.3f} {tgt:>8s}   {bl}")
    cols = (
        "pos_err_1step_px",
        "pos_err_10step_px",
        "vanished_10step",
        "action_direction_acc",
        "shuffled_err_10step_px",
    )
    print(
        f"\n{'world/conditioning':20s}{'steps':>6s}" + "".join(f"{c.replace('_px', ''):>23s}" for c in cols)
    )
    for key, n_steps in steps.items():  # the comparison (equal steps) first, then the main model
        if f"{key}/{cols[0]}" in metrics:
            print(f"{key:20s}{n_steps:6d}" + "".join(f"{metrics[f'{key}/{c}']:23.3f}" for c in cols))
    gone = {k.rsplit("/", 1)[0]: v for k, v in metrics.items() if k.endswith("/vanished_10step") and v > 0}
    for key, frac in gone.items():
        print(
            f"tracker fallback: in {frac:.0%} of {key}'s 10-step dreams the object was erased; such a"
            " frame counts as the frame centre, so its error says 'erased', not 'moved to the wrong place'"
        )
    said = ", ".join(f"{w} {v:.2f} px" for w, v in moves.items())
    print(f"largest true move per step along one axis in the held-out data: {said}")


def main(argv=None) -> None:
    """Load the checkpoint, evaluate every model on held-out data, print tables, save metrics and pictures."""
    cfg = parse_args(argv)
    set_threads(cfg.threads)
    t0, cpu0 = time.time(), time.process_time()
    device = pick_device(cfg.device)
    seed_everything(cfg.seed)
    ckpt = load_checkpoint(cfg.checkpoint, "action-dynamics", cfg.out)
    if ckpt["config"].get("data"):
        raise UserError(
            f"{cfg.checkpoint} was trained on your own dataset (--data {ckpt['config']['data']}); validate.py"
            " measures the two simulated worlds, whose true positions it knows"
        )
    codec, models = load_models(ckpt, device)
    if not all(f"{w}/{MAIN}" in models for w in WORLDS):
        raise UserError(f"the checkpoint has no '{MAIN}' models (it holds {sorted(models)}); re-run train.py")
    metrics, baselines, moves = {}, {}, {}
    root = output_root(cfg.out)
    out_dir = root / "outputs"
    out_dir.mkdir(parents=True, exist_ok=True)
    for world in WORLDS:
        seed = cfg.seed + HELDOUT_SEED_OFFSET
        data = load_trajectories(
            world, cfg.n_traj, HORIZON + 1, seed=seed, quiet=True, data_dir=root / "data"
        )
        m, b = evaluate_world(world, models, codec, data, device, cfg.seed)
        metrics.update(m)
        baselines.update(b)
        moves[world] = largest_move_per_axis(data["positions"], world)
        save_counterfactual(world, models[f"{world}/{MAIN}"], codec, data, device, out_dir)
    flat = {k.replace(f"/{MAIN}/", "/"): v for k, v in metrics.items() if f"/{MAIN}/" in k}
    others = {k: v for k, v in metrics.items() if f"/{MAIN}/" not in k}
    for world in WORLDS:
        baselines[f"{world}/pos_err_10step_px/shuffled_actions"] = flat[f"{world}/shuffled_err_10step_px"]
    targets = {k: list(v) for k, v in TARGETS.items()}
    ok = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b}
    passed = all(ok[op](flat[k], t) for k, (op, t) in targets.items())
    report = {
        "chapter": "3.action-conditioning",
        "quick": cfg.quick,
        "device": str(device),
        "train_seconds": round(float(ckpt["train_seconds"]), 1),
        "metrics": flat | others,
        "baselines": baselines,
        "targets": targets,
        "passed": passed,
        "conditioning_for_targets": MAIN,
        "largest_true_move_per_axis_px": moves,
    }
    (out_dir / "metrics.json").write_text(json.dumps(report, indent=2))
    # Older checkpoints did not store each model's steps: 0 there (unknown)
    steps = {k: ckpt.get("steps", {}).get(k, 0) for k in ckpt["dynamics"]}
    print_tables(metrics, baselines, steps, moves)
    if cfg.quick:
        print("\nsmoke run (--quick): this checks the plumbing; the numbers are not the lesson's")
    cpu = f" ({ckpt['train_cpu_seconds']:.0f} CPU-seconds)" if "train_cpu_seconds" in ckpt else ""
    verdict = "PASSED" if passed else "NOT met"
    print(f"\ntrain seconds {ckpt['train_seconds']:.0f}{cpu}, validate seconds {time.time() - t0:.0f}"
          f" ({time.process_time() - cpu0:.0f} CPU-seconds); targets {verdict}")  # fmt: skip
    print(f"wrote {out_dir / 'metrics.json'} and counterfactual_{{dot,wall}}.png in {out_dir}")


if __name__ == "__main__":
    exit_on_user_error(main)
