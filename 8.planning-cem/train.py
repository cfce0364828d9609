"""Train chapter 8's world model: the model the planners turn into actions.

    uv run train.py                 # one model on both rooms, `wall` and `umaze` (the targets need this)
    uv run train.py --quick         # a smoke run in well under a minute
    uv run train.py --env pusht     # the external benchmark: the same model on PushT (separate run)
    uv run train.py --quick --out /tmp/run1   # data/, checkpoints/, outputs/ under /tmp/run1

The model (models/world_model.py) encodes a frame to a latent, reads the agent's position off it, and
predicts the next latent from the latent and the action. It is trained on random-action trajectories
(windows of ``window`` frames, rolled out open-loop). Writes checkpoints/world_model.pt (or
world_model_pusht.pt) and outputs/train_loss.png, and caches the trajectories as Hugging Face datasets
under data/ (all three under the chapter folder, or under --out DIR). PushT's data: scripted pushes
through the gym-pusht env (pusht/data.py): 2,000 trajectories and 3,000 steps by default.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import torch
from experience_graph import experience_distances, pair_targets

from data_utils import WORLDS, load_trajectories
from models import WorldModel
from models.world_model import POS_WEIGHT
from utils import (
    UserError,
    command,
    exit_on_user_error,
    given_flags,
    output_root,
    pick_device,
    save_checkpoint,
    seed_everything,
    set_threads,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PUSHT_TRAIN = {"steps": 3000, "n_traj": 2000}  # --env pusht's own defaults (flags you type win)


@dataclass
class TrainConfig:
    """Every training setting; each field is also a command-line flag (--field-name)."""

    env: str = "rooms"  # "rooms" (wall + umaze, the default) or "pusht"
    n_traj: int = 1200  # training trajectories per world
    traj_len: int = 16  # frames per trajectory
    window: int = 6  # frames per training window (5 actions rolled out open-loop)
    steps: int = 4000  # optimiser steps (measured on 2 free cores: 207 s in all, ~52 ms each)
    batch: int = 32  # windows per step
    wall_share: float = 0.67  # fraction of each batch from `wall` (the rest from `umaze`); rooms only
    lr: float = 1e-3
    latent_dim: int = 64
    ch: int = 32
    hidden: int = 256  # width of the MLPs (the position head gets half); 128 halves planning time but
    # reached only 0.84 on 200 `wall` tasks (NOTES.md)
    pairs: int = 1024  # frame pairs per step for the distance head (rooms only; 0 = do not train it)
    grid: int = 32  # cells per side of the experience graph behind the distance head's targets
    time_budget: float = 0.0  # seconds: stop early past this (reported); 0 = no limit: the default run is
    # sized by --steps, so its result does not depend on how busy the machine is
    init_from: str = ""  # optional: start from a checkpoint of this chapter (matching tensors are loaded)
    threads: int = 0  # torch threads; 0: the cores free right now (see utils.choose_threads)
    seed: int = 0
    device: str = "auto"
    out: str = ""  # output root for data/, checkpoints/ and outputs/ ("": this chapter's folder)
    quick: bool = False


def parse_args(argv=None) -> TrainConfig:
    """Command-line flags -> TrainConfig (bad values are one-line errors)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            p.add_argument(flag, action="store_true", help="tiny data, few steps: < 60 s")
        elif f.name == "env":
            p.add_argument(flag, default=f.default, choices=["rooms", "pusht"], help="default: rooms")
        elif f.name == "device":
            p.add_argument(flag, default=f.default, choices=["auto", "cpu", "cuda", "mps"])
        elif f.name == "out":
            what = "output root for data/, checkpoints/, outputs/ (default: this chapter's folder)"
            p.add_argument(flag, default="", help=what)
        else:
            p.add_argument(flag, type=type(f.default), default=f.default, help=f"default: {f.default}")
    cfg = TrainConfig(**vars(p.parse_args(argv)))
    given = given_flags(p, argv)
    if cfg.env == "pusht":  # PushT's default run: 3,000 steps (< 15 min on 2 cores with its data)
        cfg = dataclasses.replace(cfg, **{k: v for k, v in PUSHT_TRAIN.items() if k not in given})
    if cfg.quick:  # the smoke run's sizes, except where a flag was typed
        quick = {"n_traj": 60, "steps": 60, "batch": 16}
        cfg = dataclasses.replace(cfg, **{k: v for k, v in quick.items() if k not in given})
    if cfg.n_traj < 2 or cfg.steps < 1 or cfg.batch < 2 or not 2 <= cfg.window <= cfg.traj_len:
        raise UserError("need --n-traj >= 2, --steps >= 1, --batch >= 2 and 2 <= --window <= --traj-len")
    return cfg


def load_data(cfg: TrainConfig, data_dir: Path) -> list[dict]:
    """The training trajectories: one dict per world (see data_utils.make_trajectories; PushT's:
    pusht/data.py), cached under ``data_dir``."""
    if cfg.env == "pusht":
        from pusht import load_pusht_trajectories  # imported here: gym-pusht is only needed for PushT

        return [load_pusht_trajectories(cfg.n_traj, cfg.traj_len, cfg.seed, data_dir=data_dir)]
    return [load_trajectories(w, cfg.n_traj, cfg.traj_len, cfg.seed, data_dir=data_dir) for w in WORLDS]


def sample_batch(data: list[dict], batch: int, window: int, rng: np.random.Generator, device, share=None):
    """Random windows from random trajectories of every world (the first world gets ``share`` of the
    batch when given, the others split the rest; default: round robin).

    Returns:
        frames (B, T, 3, 64, 64) float in [0, 1], actions (B, T-1, 2), proprio (B, T, 2), T = window,
        and world (B,) int numpy: which world each window comes from.
    """
    frames, actions, proprio, world = [], [], [], []
    n_first = round(batch * share) if share is not None and len(data) > 1 else None
    for i in range(batch):
        w = i % len(data) if n_first is None else (0 if i < n_first else 1 + i % (len(data) - 1))
        d = data[w]
        world.append(w)
        n, length = d["actions"].shape[:2]
        j, t = rng.integers(n), rng.integers(length + 1 - (window - 1))
        frames.append(d["frames"][j, t : t + window])
        actions.append(d["actions"][j, t : t + window - 1])
        proprio.append(d["proprio"][j, t : t + window])
    x = torch.from_numpy(np.stack(frames)).to(device).permute(0, 1, 4, 2, 3).float() / 255  # (B, T, 3, H, W)
    a, p = (torch.from_numpy(np.stack(v)).to(device) for v in (actions, proprio))
    return x, a, p, np.array(world)


def distance_pairs(tables: list[np.ndarray], proprio, world: np.ndarray, n: int, grid: int, rng, device):
    """Random (from, to) pairs of frames of the same world in a batch (half of them from one window), with
    the distance head's targets.

    Args:
        tables: one (C, C) experience_distances table per world. proprio: (B, T, 2) tensor. world: (B,).
    Returns:
        (i_from (M,), i_to (M,), target (M,)) indices into the B*T flattened frames; M <= n (pairs whose
        cells the recorded transitions never connected are dropped).
    """
    p = proprio.flatten(0, 1).cpu().numpy()  # (B*T, 2)
    w = np.repeat(world, proprio.shape[1])  # (B*T,) the world of each frame
    i_from, t = rng.integers(len(p), size=n), proprio.shape[1]
    same = [np.flatnonzero(w == k) for k in range(len(tables))]  # frames of each world
    i_to = np.array([same[w[i]][rng.integers(len(same[w[i]]))] for i in i_from])  # a partner, same world
    # Half the partners come from the same window (the frame itself included): short distances, which
    # random pairs rarely are. Without them the head read ~0.07 for a frame against itself, and near the
    # goal the planner's cost went flat (measured: goals next to the border were missed by a few pixels).
    near = rng.random(n) < 0.5
    i_to[near] = i_from[near] // t * t + rng.integers(t, size=near.sum())  # (M_near,) same window
    target = np.empty(n, dtype=np.float32)
    for k, table in enumerate(tables):
        m = w[i_from] == k
        target[m] = pair_targets(table, p[i_from[m]], p[i_to[m]], grid)
    ok = np.isfinite(target)
    return tuple(torch.from_numpy(v[ok]).to(device) for v in (i_from, i_to, target))


@torch.no_grad()
def latent_scale(model: WorldModel, data: list[dict], device, n: int = 256, seed: int = 1) -> float:
    """Mean squared distance per dimension between the latents of two random training frames: the unit
    of the planning cost's latent term (so that term is about 1 for unrelated frames)."""
    rng = np.random.default_rng(seed)
    x = sample_batch(data, n, 1, rng, device)[0]  # (n, 1, 3, H, W)
    z = model.encode(x[:, 0])  # (n, D)
    return float((z - z[torch.randperm(n)]).pow(2).mean())


def save_loss_plot(history: list[dict], env: str, out_dir: Path) -> None:
    """<out_dir>/train_loss.png (train_loss_pusht.png for PushT): the total loss and the weighted terms
    it is the sum of (WorldModel.loss: latent + 100 x (position from the encoder + position from the
    imagined latents) + variance floor + distance head), so the curves add up to the total."""
    weights = {"latent": 1.0, "pos_enc": POS_WEIGHT, "pos_pred": POS_WEIGHT, "variance": 1.0, "distance": 1.0}
    names = {"pos_enc": "position, encoded", "pos_pred": "position, imagined", "distance": "distance head"}
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.semilogy([h["loss"] for h in history], label="total", color="black", lw=1.2)
    for key, w in weights.items():
        if key in history[0]:
            label = names.get(key, key) + (f" x {w:g}" if w != 1 else "")
            ax.semilogy([w * h[key] + 1e-8 for h in history], label=label, lw=0.8)
    ax.set(
        xlabel="step", ylabel="loss (weighted as in the total)", title=f"training loss and its terms ({env})"
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / ("train_loss_pusht.png" if env == "pusht" else "train_loss.png"), dpi=100)
    plt.close(fig)


def init_from(model: WorldModel, path: str) -> int:
    """Copy every tensor of a checkpoint whose name and shape match; return how many were copied."""
    from utils import load_checkpoint

    state, own = load_checkpoint(path, "planning-world-model")["state"], model.state_dict()
    same = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(same, strict=False)
    return len(same)


def main(argv=None) -> None:
    """Train, save the checkpoint, plot the losses."""
    cfg = parse_args(argv)
    set_threads(cfg.threads)  # first line of output: how many threads, and why
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    root = output_root(cfg.out)  # data/, checkpoints/ and outputs/ go under it
    data = load_data(cfg, root / "data")
    pos_dim = data[0]["proprio"].shape[-1]  # 2: the agent's (x, y); PushT: 6, the agent's and block's pose
    model = WorldModel(cfg.latent_dim, cfg.ch, cfg.hidden, pos_dim=pos_dim).to(device)
    if cfg.init_from:
        print(f"init from {cfg.init_from}: {init_from(model, cfg.init_from)} tensors copied")
    print(f"world model: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters on {device}")
    # The distance head's targets: shortest chains of recorded transitions, one table per room (~1 s).
    tables = [experience_distances(d["proprio"], cfg.grid) for d in data] if cfg.env == "rooms" else []
    # The logged error in pixels: the rooms' 64-px frame; PushT's 512-px board (the rms over the pose head's
    # 6 outputs, the cos and sin of the angle included, so a rough number)
    px_per_unit = 512 if cfg.env == "pusht" else 64
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.steps, pct_start=0.05)
    rng, history, t0, cpu0 = np.random.default_rng(cfg.seed), [], time.time(), time.process_time()
    from tqdm import tqdm

    bar = tqdm(range(cfg.steps), desc="training", mininterval=2.0)
    for step in bar:
        frames, actions, proprio, world = sample_batch(
            data, cfg.batch, cfg.window, rng, device, cfg.wall_share
        )
        pairs = None
        if tables and cfg.pairs:
            pairs = distance_pairs(tables, proprio, world, cfg.pairs, cfg.grid, rng, device)
        loss, parts = model.loss(frames, actions, proprio, pairs)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        history.append({"loss": loss.item(), **parts})
        if step % 100 == 0 or step == cfg.steps - 1:
            pos_px = (parts["pos_pred"] ** 0.5) * px_per_unit
            dist = f"  distance error {parts['distance'] ** 0.5:.3f}" if "distance" in parts else ""
            bar.write(
                f"step {step:5d}  loss {loss.item():.4f}  imagined position error {pos_px:.2f} px{dist}"
            )
        if cfg.time_budget and time.time() - t0 > cfg.time_budget:
            bar.write(f"time budget of {cfg.time_budget:.0f} s reached after {step + 1} steps")
            break
    bar.close()
    seconds = time.time() - t0
    cpu_seconds = time.process_time() - cpu0  # CPU time of all threads: what a free machine would need
    model.eval()
    name = "world_model_pusht.pt" if cfg.env == "pusht" else "world_model.pt"
    ckpt = {
        "model": "planning-world-model",
        "config": {**dataclasses.asdict(cfg), "pos_dim": pos_dim},
        "state": model.state_dict(),
        "latent_scale": latent_scale(model, data, device),
        "train_seconds": seconds,
        "train_cpu_seconds": cpu_seconds,
        "steps_done": len(history),
        "loss_history": [h["loss"] for h in history],
    }
    path = root / "checkpoints" / name
    save_checkpoint(ckpt, path)
    save_loss_plot(history, cfg.env, root / "outputs")
    print(
        f"trained in {seconds:.0f} s ({cpu_seconds:.0f} CPU-seconds): {len(history)} steps, "
        f"final loss {history[-1]['loss']:.4f}, "
        f"imagined position error {history[-1]['pos_pred'] ** 0.5 * px_per_unit:.2f} px, checkpoint {path}"
    )
    args = (["--quick"] if cfg.quick else []) + (["--env", "pusht"] if cfg.env == "pusht" else [])
    args += ["--out", cfg.out] if cfg.out else []  # validate.py then reads the checkpoint from there
    print(f"next: {command('validate.py', *args)}")


if __name__ == "__main__":
    exit_on_user_error(main)
