"""Train chapter 6: V-JEPA pre-training on clips, the no-EMA collapse ablation, then V-JEPA 2-AC.

    uv run train.py                                   # the default run (see the README for minutes)
    uv run train.py --quick                           # a smoke run in well under a minute
    torchrun --nproc_per_node=2 train.py --quick      # the same, data-parallel over 2 processes (DDP)

Stages:
  A. V-JEPA: clips of 8 frames (bouncing balls and open point-mass rooms); multi-block masks; the context
     encoder sees the visible tokens, the narrow predictor fills in the masked ones, L1 to the EMA
     target encoder's features. The collapse monitor (std of target features across the batch) is logged.
  A'. The same for a few steps without EMA and stop-gradient: the monitor shows the collapse.
  B. V-JEPA 2-AC: the frozen target encoder's per-frame features of point-mass trajectories; a
     block-causal action-conditioned predictor (with a render head) trained with teacher-forcing and
     rollout losses, and a linear readout of the agent's (x, y) from a frame's tokens (for the planner).
Writes checkpoints/jepa.pt and outputs/train_loss.png (rank 0 only under torchrun).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass

import distributed as ddp
import matplotlib.pyplot as plt
import numpy as np
import torch
from training import encode_trajectories, feature_stats, fit_readout, pretrain, train_ac

from data_utils import cached
from utils import CKPT_DIR, OUT_DIR, UserError, exit_on_user_error, pick_device, save_checkpoint


@dataclass
class TrainConfig:
    """Every training setting; each field is also a command-line flag (--field-name)."""

    n_balls: int = 600  # bouncing-balls clips for pre-training
    n_room: int = 600  # open-room random-action trajectories (pre-training clips and V-JEPA 2-AC data)
    frames: int = 8  # frames per clip (tubelets are 2 frames, so even)
    enc_dim: int = 96
    enc_depth: int = 4
    heads: int = 4
    pred_dim: int = 48  # the narrow predictor
    pred_depth: int = 2
    batch: int = 16
    lr: float = 1e-3
    ema_start: float = 0.99  # EMA momentum, linearly to 1.0 at the end
    pretrain_steps: int = 450
    collapse_steps: int = 50  # the no-EMA ablation
    ac_dim: int = 64
    ac_depth: int = 3
    ac_batch: int = 16
    ac_steps: int = 1000
    ac_lr: float = 3e-3  # the render head learns its position -> features map faster with it (pilot)
    ac_freqs: int = 6  # sine frequencies of the positions' encoding in the 2-AC predictor
    rollout_steps: int = 2  # the rollout loss imagines this many steps
    threads: int = 1  # torch threads per process (1 is best when other jobs share the cores)
    seed: int = 0
    device: str = "auto"
    quick: bool = False


QUICK = {"n_balls": 48, "n_room": 48, "batch": 8, "pretrain_steps": 12, "collapse_steps": 6}
QUICK |= {"ac_batch": 8, "ac_steps": 10}


def parse_args(argv=None) -> TrainConfig:
    """Command-line flags -> TrainConfig (--quick replaces the defaults it names, unless given)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            parser.add_argument(flag, action="store_true", help=f"(default: {f.default})")
        else:
            kind = {"int": int, "float": float, "str": str}[f.type]
            parser.add_argument(flag, type=kind, default=None, help=f"(default: {f.default})")
    parser.set_defaults(device="auto")
    args = vars(parser.parse_args(argv))
    base = dataclasses.asdict(TrainConfig())
    if args["quick"]:
        base |= QUICK
    cfg = TrainConfig(**(base | {k: v for k, v in args.items() if v is not None}))
    if cfg.frames < 4 or cfg.frames % 2:
        raise UserError(f"--frames must be an even number >= 4 (a tubelet spans 2 frames), got {cfg.frames}")
    for name in ("n_balls", "n_room", "batch", "ac_batch", "pretrain_steps", "ac_steps"):
        if getattr(cfg, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(cfg, name)}")
    if cfg.rollout_steps >= cfg.frames:
        raise UserError(f"--rollout-steps must be below --frames ({cfg.frames}), got {cfg.rollout_steps}")
    return cfg


def plot_logs(logs: dict, path) -> None:
    """outputs/train_loss.png: the masked-prediction loss, the collapse monitor, the AC losses."""
    fig, ax = plt.subplots(1, 3, figsize=(15, 3.8))
    ax[0].plot(logs["jepa"]["loss"], lw=0.8)
    ax[0].set(title="V-JEPA masked-prediction loss (L1)", xlabel="step", yscale="log")
    for name, log in (("V-JEPA (EMA + stop-grad)", logs["jepa"]), ("no EMA, no stop-grad", logs["ablation"])):
        spread = np.asarray(log["spread"])
        ax[1].plot(spread / spread[0], label=name, lw=0.8)
    ax[1].axhline(0.2, color="grey", ls="--", lw=0.8, label="20 % of step 0 (target)")
    ax[1].set(title="collapse monitor: target-feature std / step 0", xlabel="step", yscale="log")
    ax[1].legend(fontsize=8)
    ax[2].plot(logs["ac"]["teacher"], label="teacher forcing", lw=0.8)
    ax[2].plot(logs["ac"]["rollout"], label="rollout", lw=0.8)
    ax[2].set(title="V-JEPA 2-AC losses (L1)", xlabel="step", yscale="log")
    ax[2].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    """Run the three stages and write the checkpoint (rank 0)."""
    cfg = parse_args(argv)
    torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    rank, world = ddp.setup(device)
    device = ddp.device_for(device, world)
    start = time.time()
    c = dataclasses.asdict(cfg)
    balls = cached("balls", n=cfg.n_balls, length=cfg.frames, seed=cfg.seed)
    room = cached("room", n=cfg.n_room, length=cfg.frames, seed=cfg.seed + 1, layout="open")
    clips = torch.from_numpy(np.concatenate([balls["frames"], room["frames"]]))  # (N, T, 64, 64, 3) uint8
    if rank == 0:
        print(f"{len(clips)} clips of {cfg.frames} frames, {world} process(es) on {device}")

    encoder, predictor, jepa_log = pretrain(c, clips, device, rank, world, cfg.pretrain_steps, ema=True)
    ablation, _, ablation_log = pretrain(c, clips, device, rank, world, cfg.collapse_steps, ema=False)
    z = encode_trajectories(encoder, room["frames"], device)  # (N, T, P, D) frozen features
    stats = feature_stats(z)
    z = (z - stats["mean"]) / stats["std"]  # standardised per (patch, dim)
    # the goal image's (x, y) for the planner's energy, read from the full 8x8 token grid (every 2nd frame)
    tokens = encode_trajectories(encoder, room["frames"][:, ::2], device, pool=1)  # (N, T/2, 64, D)
    readout = fit_readout(tokens, room["proprio"][:, ::2])
    ac, ac_log = train_ac(c, z, room["actions"], room["proprio"], device, rank, world, cfg.ac_steps)
    seconds = time.time() - start

    if rank == 0:
        logs = {"jepa": jepa_log, "ablation": ablation_log, "ac": ac_log}
        ckpt = {
            "model": "jepa-masked-video",
            "config": c | {"n_patches": z.shape[2], "world_size": world},
            "encoder": encoder.state_dict(),
            "predictor": predictor.state_dict(),
            "ablation_encoder": ablation.state_dict(),
            "ac": ac.state_dict(),
            "z_stats": stats,
            "readout": readout,
            "logs": logs,
            "train_seconds": seconds,
        }
        path = CKPT_DIR / "jepa.pt"
        save_checkpoint(ckpt, path)
        plot_logs(logs, OUT_DIR / "train_loss.png")
        s0, s1 = jepa_log["spread"][0], np.mean(jepa_log["spread"][-10:])
        a1 = np.mean(ablation_log["spread"][-5:]) / ablation_log["spread"][0]
        print(
            f"trained in {seconds:.0f} s ({world} process(es)): V-JEPA {cfg.pretrain_steps} steps, loss "
            f"{np.mean(jepa_log['loss'][-10:]):.4f}, spread {s1 / s0:.2f}x step 0 (no-EMA run: {a1:.2f}x); "
            f"2-AC {cfg.ac_steps} steps, teacher {np.mean(ac_log['teacher'][-10:]):.4f}, rollout "
            f"{np.mean(ac_log['rollout'][-10:]):.4f}; checkpoint {path}"
        )
    ddp.cleanup(world)


if __name__ == "__main__":
    exit_on_user_error(main)
