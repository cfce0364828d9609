"""Evaluate the learner's checkpoint on fresh toroidal-dot episodes of another seed.

    uv run validate.py            # after uv run train.py
    uv run validate.py --quick

For every held-out step it asks the level-0 predictor what happens under *both* actions and compares
with the truth (the world is copied and stepped each way): the dot position (in 224-px units),
the explained variance R^2 in patch space, and whether the action classifier names the action.
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
from config import AdaptiveWorldModelConfig
from learner import build_codec, build_predictor
from learner.logs import to_image
from learner.persistence import load_latest
from robots import ToroidalDotConfig, ToroidalDotEnvironment

from models import decode_prediction, explained_variance, patchify
from utils import (
    HERE,
    UserError,
    command,
    dot_position,
    exit_on_user_error,
    given_flags,
    pick_device,
    preprocess_frame,
    ring_error,
    seed_everything,
    set_threads,
)

HELDOUT_SEED_OFFSET = 1000
TARGETS = {"pos_within_2px/both_actions": [">=", 0.95], "r2_patch": [">=", 0.9], "action_acc": [">=", 0.95]}


@dataclass
class ValConfig:
    """Settings of an evaluation."""

    checkpoint: str = str(HERE / "checkpoints" / "toroidal_dot")
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
    p.add_argument("--checkpoint", default=d.checkpoint, help="the learner's checkpoint folder")
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
    if "checkpoint" in typed and not Path(cfg.checkpoint).exists():  # a typo, not a missing training run
        raise UserError(f"no such file: {cfg.checkpoint}")
    if cfg.episodes < 1:
        raise UserError(f"--episodes must be at least 1, got {cfg.episodes}")
    return cfg


def load_learner_models(folder: str, device) -> tuple:
    """(config, codec, level-0 predictor, state) from a checkpoint folder, with one-line errors."""
    path = Path(folder)
    if path.is_file():
        raise UserError(f"{path} is a file: --checkpoint takes the learner's checkpoint folder")
    try:
        found = load_latest(path, log=lambda m: print(f"note: {m}"))
    except ValueError as e:
        raise UserError(str(e)) from e
    if found is None:
        raise UserError(f"no checkpoint in {path}: run `{command('train.py')}` first")
    state, blobs, _ = found
    ae = blobs["autoencoder"]
    if ae.get("model") != "adaptive-autoencoder":
        raise UserError(
            f"{path} holds a {ae.get('model')!r} model, not the adaptive world model's autoencoder"
        )
    cfg = AdaptiveWorldModelConfig.from_dict(ae["config"])
    if cfg.ROBOT_NAME != "toroidal_dot":
        raise UserError(f"{path} was trained on {cfg.ROBOT_NAME!r}; validate.py evaluates the toroidal dot")
    codec, pred = build_codec(cfg).to(device), build_predictor(cfg, 0, 2).to(device)
    try:
        codec.load_state_dict(ae["state_dict"])
        pred.load_state_dict(blobs["predictor_0"]["state_dict"])
    except RuntimeError as e:
        raise UserError(f"{path}: weights do not fit the model ({str(e).splitlines()[0]})") from e
    return cfg, codec.eval(), pred.eval(), state


def rollout_dataset(cfg: ValConfig, size: int, history: int) -> dict:
    """Held-out episodes with random actions; at each step the truth under both actions.

    Returns hist (M, H, 3, S, S), past (M, H-1) action indices, next (M, 2, 3, S, S) true next frames
    under action 0 and 1, pos (M, 2, 2) true next (x, y) under each action, where M is the step count.
    """
    env = ToroidalDotEnvironment(ToroidalDotConfig(seed=cfg.seed + HELDOUT_SEED_OFFSET))
    rng = np.random.default_rng(cfg.seed + HELDOUT_SEED_OFFSET)
    out = {"hist": [], "past": [], "next": [], "pos": []}
    for _ in range(cfg.episodes):
        frames, acts = [preprocess_frame(env.reset(), size)], []
        for _ in range(cfg.episode_len):
            if len(frames) >= history:
                x0, nxt, pos = env.x, [], []
                for a in (0, 1):  # copy the world: step it each way, then put the dot back
                    nxt.append(preprocess_frame(env.step(a), size))
                    pos.append(env.position)
                    env.x = x0
                out["hist"].append(torch.stack(frames[-history:]))
                out["past"].append(torch.tensor(acts[-(history - 1) :]))
                out["next"].append(torch.stack(nxt))
                out["pos"].append(torch.tensor(pos, dtype=torch.float32))
            a = int(rng.integers(2))
            frames.append(preprocess_frame(env.step(a), size))
            acts.append(a)
    return {k: torch.stack(v) for k, v in out.items()}


@torch.no_grad()
def evaluate(codec, pred, table, data: dict, device, batch: int = 64) -> tuple[dict, dict, torch.Tensor]:
    """Metrics and baselines over the held-out steps; also returns the predictions (M, 2, 3, S, S)."""
    preds, logits = [], []
    for i in range(0, len(data["hist"]), batch):
        hist = data["hist"][i : i + batch].to(device)  # (b, H, 3, S, S)
        b, h = hist.shape[:2]
        z = codec.encode(hist.flatten(0, 1)).view(b, h, -1, codec.latent_dim)
        per_action = []
        for a in (0, 1):
            idx = torch.cat([data["past"][i : i + batch], torch.full((b, 1), a)], dim=1)  # (b, H)
            z_next = pred(z, table[idx].to(device))
            pf = decode_prediction(codec, z_next, z[:, -1], hist[:, -1]).clamp(0, 1)
            per_action.append(pf.cpu())
            logits.append(pred.classifier(pf - hist[:, -1]).cpu().argmax(dim=1) == a)
        preds.append(torch.stack(per_action, dim=1))
    preds = torch.cat(preds)  # (M, 2, 3, S, S)
    m = len(preds)
    true_pos = data["pos"].reshape(m * 2, 2)
    err = ring_error(dot_position(preds.flatten(0, 1)), true_pos).view(m, 2)
    last = data["hist"][:, -1:].expand(-1, 2, -1, -1, -1)  # copy-last-frame baseline
    err_copy = ring_error(dot_position(last.flatten(0, 1)), true_pos).view(m, 2)
    codec_only = torch.cat(
        [
            codec.decode(codec.encode(c.to(device))).clamp(0, 1).cpu()
            for c in data["next"].flatten(0, 1).split(batch)
        ]
    )
    err_codec = ring_error(dot_position(codec_only), true_pos).view(m, 2)
    wrong = preds.flip(1)  # the prediction for the *other* action: does the action matter?
    err_wrong = ring_error(dot_position(wrong.flatten(0, 1)), true_pos).view(m, 2)

    def r2(x):
        """R^2 of frames x (M, 2, 3, S, S) against the true next frames, in 8x8 patch space."""
        return explained_variance(patchify(x.flatten(0, 1), 8), patchify(data["next"].flatten(0, 1), 8))

    metrics = {
        "pos_within_2px/both_actions": float((err <= 2).all(dim=1).float().mean()),
        "pos_within_2px/action_0": float((err[:, 0] <= 2).float().mean()),
        "pos_within_2px/action_1": float((err[:, 1] <= 2).float().mean()),
        "pos_err_px/median": float(err.median()),
        "r2_patch": r2(preds),
        "action_acc": float(torch.cat(logits).float().mean()),
        "codec_pos_err_px/median": float(err_codec.median()),
    }
    baselines = {
        "pos_within_2px/both_actions/copy_last": float((err_copy <= 2).all(dim=1).float().mean()),
        "pos_within_2px/both_actions/other_action": float((err_wrong <= 2).all(dim=1).float().mean()),
        "pos_within_2px/action_0/copy_last": float((err_copy[:, 0] <= 2).float().mean()),
        "pos_within_2px/action_1/copy_last": float((err_copy[:, 1] <= 2).float().mean()),
        "pos_err_px/median/copy_last": float(err_copy.median()),
        "r2_patch/copy_last": r2(last),
        "r2_patch/other_action": r2(wrong),
        "action_acc/chance": 0.5,
        "codec_pos_err_px/median/true_frame": float(
            ring_error(dot_position(data["next"].flatten(0, 1)), true_pos).median()
        ),
    }
    return metrics, baselines, preds


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
    data = rollout_dataset(cfg, wm.MODEL_IMG_SIZE, wm.PREDICTION_HISTORY_SIZE)
    metrics, baselines, preds = evaluate(codec, pred, table, data, device)
    metrics["loop_steps_per_second"] = state["step"] / max(state["train_seconds"], 1e-9)
    baselines["loop_steps_per_second/robot_only"] = robot_only_rate()
    passed = all({"<=": metrics[k] <= t, ">=": metrics[k] >= t}[op] for k, (op, t) in TARGETS.items())
    out_dir = HERE / "outputs"
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
    (out_dir / "metrics.json").write_text(json.dumps(report, indent=2))
    print(f"\n{'metric':32s} {'value':>8s} {'target':>8s}   baseline")
    for key, value in metrics.items():
        tgt = f"{TARGETS[key][0]} {TARGETS[key][1]:g}" if key in TARGETS else ""
        bl = ", ".join(
            f"{k[len(key) + 1 :]} {v:.3g}"
            for k, v in baselines.items()
            if k.startswith(key + "/") and "/" not in k[len(key) + 1 :]
        )
        print(f"{key:32s} {value:8.3f} {tgt:>8s}   {bl}")
    print(f"({len(preds)} held-out steps x 2 actions; picture: outputs/predictions.png)")
    if cfg.quick:
        print("\nsmoke run (--quick): this checks the plumbing; the numbers are not the lesson's")
    print(f"\ntrain seconds {state['train_seconds']:.0f}, validate seconds {time.perf_counter() - t0:.0f}; "
          f"targets {'PASSED' if passed else 'NOT met'}")  # fmt: skip


def robot_only_rate(steps: int = 300) -> float:
    """Steps per second of the bare toroidal-dot loop (observe, resize, act): the ceiling of the learner."""
    env = ToroidalDotEnvironment(ToroidalDotConfig(seed=0))
    t = time.perf_counter()
    for i in range(steps):
        preprocess_frame(env.step(i % 2), 64)
    return steps / (time.perf_counter() - t)


if __name__ == "__main__":
    exit_on_user_error(main)
