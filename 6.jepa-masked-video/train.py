"""Train chapter 6: V-JEPA pre-training on arm clips, the no-EMA collapse ablation, then V-JEPA 2-AC.

    uv run train.py                                   # the default run (see the README for minutes)
    uv run train.py --quick                           # a smoke run in well under a minute
    torchrun --nproc_per_node=2 train.py --quick      # the same, data-parallel over 2 processes (DDP)

Stages:
  A. V-JEPA: clips of 8 frames cut from random-action trajectories of the two-link arm with nuisance;
     multi-block masks; the context encoder sees the visible tokens of the clip under one scene, the
     narrow predictor fills in the masked ones, L1 to the EMA target encoder's features of the same clip
     under another scene (domain randomisation). The collapse monitor is logged.
  A'. The same for a few steps without EMA and stop-gradient: the monitor shows the collapse.
  B. V-JEPA 2-AC: a block-causal action-conditioned predictor on the frozen target encoder's per-frame
     features, trained with teacher-forcing and rollout losses; and the same predictor on the features of
     the encoder at its random initialisation (the planner's baseline).
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
from training import encode_trajectories, feature_stats, init_encoder, pretrain, train_ac

from data_utils import WORLD, load_trajectories
from utils import (
    UserError,
    command,
    exit_on_user_error,
    given_flags,
    output_root,
    pick_device,
    save_checkpoint,
    set_threads,
)


@dataclass
class TrainConfig:
    """Every training setting; each field is also a command-line flag (--field-name)."""

    n_traj: int = 500  # random-action arm trajectories (pre-training clips and V-JEPA 2-AC data)
    traj_len: int = 16  # frames per trajectory; clips and AC windows are cut from them
    frames: int = 8  # frames per V-JEPA clip (tubelets are 2 frames, so even)
    enc_dim: int = 96
    enc_depth: int = 4
    heads: int = 4
    patch: int = 16  # tubelet side in pixels: a 4x4 token grid per frame pair
    pred_dim: int = 48  # the narrow predictor
    pred_depth: int = 2
    batch: int = 32
    lr: float = 1e-3
    ema_start: float = 0.99  # EMA momentum, linearly to 1.0 at the end
    visible_weight: float = 1.0  # an extra cross-scene L1 on the visible tokens (0: V-JEPA's loss only)
    pretrain_steps: int = 1500
    collapse_steps: int = 100  # the no-EMA ablation
    ac_dim: int = 64
    ac_depth: int = 3
    ac_batch: int = 32
    ac_steps: int = 1000  # per AC predictor (V-JEPA features, random-init features)
    ac_lr: float = 3e-3
    ac_freqs: int = 2  # sine frequencies of the proprioception's encoding in the 2-AC predictor
    ac_frames: int = 4  # frames per AC training window (the planner reads 1; short windows train fast)
    rollout_steps: int = 3  # the rollout loss imagines this many steps
    threads: int = 0  # torch threads; 0: the cores free right now, 1 per process under torchrun (utils)
    seed: int = 0
    device: str = "auto"
    out: str = ""  # output root for data/, checkpoints/ and outputs/ ("": this chapter's folder)
    quick: bool = False


QUICK = {"n_traj": 32, "traj_len": 10, "batch": 8, "pretrain_steps": 12, "collapse_steps": 6}
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
            kw = {"choices": ["auto", "cpu", "cuda", "mps"]} if f.name == "device" else {}
            parser.add_argument(flag, type=kind, default=f.default, help=f"(default: {f.default})", **kw)
    cfg = TrainConfig(**vars(parser.parse_args(argv)))
    if cfg.quick:  # --quick shrinks only what was not typed
        typed = given_flags(parser, argv)
        cfg = dataclasses.replace(cfg, **{k: v for k, v in QUICK.items() if k not in typed})
    if cfg.frames < 4 or cfg.frames % 2:
        raise UserError(f"--frames must be an even number >= 4 (a tubelet spans 2 frames), got {cfg.frames}")
    if cfg.patch not in (8, 16, 32):
        raise UserError(f"--patch must be 8, 16 or 32 (it must divide the 64-px frame), got {cfg.patch}")
    if max(cfg.frames, cfg.ac_frames) > cfg.traj_len:
        raise UserError(f"--frames and --ac-frames must not exceed --traj-len ({cfg.traj_len})")
    for name in ("n_traj", "batch", "ac_batch", "pretrain_steps", "ac_steps"):
        if getattr(cfg, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(cfg, name)}")
    if not 1 <= cfg.rollout_steps < cfg.ac_frames:
        raise UserError(f"--rollout-steps must be in 1..{cfg.ac_frames - 1}, got {cfg.rollout_steps}")
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
    set_threads(cfg.threads)  # first line of output: how many threads, and why
    device = pick_device(cfg.device)
    rank, world = ddp.setup(device)
    device = ddp.device_for(device, world)
    start = time.time()
    c = dataclasses.asdict(cfg)
    if rank != 0:  # rank 0 generates and caches the data first; the others then read the cache
        ddp.barrier(world)
    root = output_root(cfg.out)  # data/, checkpoints/ and outputs/ go under it
    data = load_trajectories(cfg.n_traj, cfg.traj_len, seed=cfg.seed, quiet=rank != 0, data_dir=root / "data")
    if rank == 0:
        ddp.barrier(world)
    if rank == 0:
        print(f"{cfg.n_traj} trajectories of {cfg.traj_len} frames, {world} process(es) on {device}")

    encoder, context, predictor, jepa_log = pretrain(c, data, device, rank, world, cfg.pretrain_steps)
    ablation, _, _, ablation_log = pretrain(c, data, device, rank, world, cfg.collapse_steps, ema=False)
    acs, stats, ac_logs = {}, {}, {}
    for name, enc in (("jepa", encoder), ("init", init_encoder(c).to(device))):
        z = encode_trajectories(enc, data["frames"], device)  # (N, L, P, D) frozen features
        stats[name] = feature_stats(z)
        z = (z - stats[name]["mean"]) / stats[name]["std"]  # standardised per (patch, dim)
        acs[name], ac_logs[name] = train_ac(
            c, z, data["actions"], data["proprio"], device, rank, world, cfg.ac_steps
        )
    ac_log = ac_logs["jepa"]
    seconds = time.time() - start

    if rank == 0:
        logs = {"jepa": jepa_log, "ablation": ablation_log, "ac": ac_log}
        ckpt = {
            "model": "jepa-masked-video",
            "world": WORLD,
            "config": c | {"n_patches": z.shape[2], "world_size": world},
            "encoder": encoder.state_dict(),  # the EMA target encoder: the one V-JEPA keeps
            "context_encoder": context.state_dict(),  # for the held-out masked loss
            "predictor": predictor.state_dict(),
            "ablation_encoder": ablation.state_dict(),
            "ac": {name: m.state_dict() for name, m in acs.items()},
            "z_stats": stats,
            "logs": logs,
            "train_seconds": seconds,
        }
        path = root / "checkpoints" / "jepa.pt"
        save_checkpoint(ckpt, path)
        plot_logs(logs, root / "outputs" / "train_loss.png")
        s0, s1 = jepa_log["spread"][0], np.mean(jepa_log["spread"][-10:])
        a1 = np.mean(ablation_log["spread"][-5:]) / ablation_log["spread"][0]
        print(
            f"trained in {seconds:.0f} s ({world} process(es)): V-JEPA {cfg.pretrain_steps} steps, loss "
            f"{np.mean(jepa_log['loss'][-10:]):.4f}, spread {s1 / s0:.2f}x step 0 (no-EMA run: {a1:.2f}x); "
            f"2-AC {cfg.ac_steps} steps, teacher {np.mean(ac_log['teacher'][-10:]):.4f}, rollout "
            f"{np.mean(ac_log['rollout'][-10:]):.4f}; checkpoint {path}"
        )
        again = [*(["--quick"] if cfg.quick else []), *(["--out", cfg.out] if cfg.out else [])]
        print("next: " + command("validate.py", *again))  # the same --quick and --out
    ddp.cleanup(world)


if __name__ == "__main__":
    exit_on_user_error(main)
