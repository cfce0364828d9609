"""Train the chapter-1 frame codecs: a VAE and an FSQ autoencoder, on a mix of the three worlds.

    uv run train.py                 # both models, ~3.5 minutes on 2 free CPU cores (fp32)
    uv run train.py --model fsq     # only one of them
    uv run train.py --quick         # a smoke run in well under a minute
    uv run train.py --data ~/my_videos   # on your own .mp4/.avi files or image frames (see video_folder.py)

Writes checkpoints/{vae,fsq}.pt, outputs/train_loss.png and outputs/train_recon_{vae,fsq}.png, and caches
the frames under data/; all three folders sit under --out DIR (default: this chapter's folder).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm import tqdm

from data_utils import column, load_frames
from models import build_model, kl_to_standard_normal, weighted_mse
from utils import (
    UserError,
    add_config_flags,
    autocast,
    command,
    exit_on_user_error,
    given_flags,
    output_root,
    pick_device,
    save_checkpoint,
    seed_everything,
    set_threads,
    setting,
)


@dataclass
class TrainConfig:
    """Every training setting; each field is also a command-line flag (--field-name), its help text below."""

    model: str = setting("both", "vae, fsq or both (one after the other)")
    steps: int = setting(1500, "optimiser steps per model")
    batch_size: int = setting(64, "frames per step")
    lr: float = setting(2e-3, "peak learning rate (linear warm-up, then cosine decay)")
    warmup: int = setting(100, "warm-up steps")
    n_per_world: int = setting(6000, "training frames per world (dot, balls, wall)")
    ch: int = setting(16, "base conv width of encoder and decoder")
    latent_dim: int = setting(4, "VAE channels per latent cell")
    fsq_levels: list[int] = field(
        default_factory=lambda: [8, 5, 5, 5],
        metadata={"help": "FSQ levels per channel (8 5 5 5: 1000 codes)"},
    )
    beta: float = setting(1e-3, "VAE: weight of the KL term")
    fg_weight: float = setting(20.0, "foreground pixels count up to this many times more in the loss")
    z_penalty: float = setting(1.0, "FSQ: weight of the hinge on the pre-tanh latent |z| > 2 (0: off)")
    seed: int = setting(0, "seed of the weights, the batches and the training frames")
    device: str = setting("auto", "auto picks cuda, then mps, then cpu")
    precision: str = setting("auto", "auto: bf16 where the hardware is fast at it, else fp32")
    threads: int = setting(0, "torch threads; 0: the cores free right now")
    quick: bool = setting(False, "tiny data and few steps: a smoke test in well under a minute")
    data: str = setting("", "a folder of your own .mp4/.avi files or image frames (default: the worlds)")
    out: str = setting(
        "", "output root for data/, checkpoints/ and outputs/ (default: this chapter's folder)"
    )


# The smoke run: both models, every picture, few steps at batch 16 (60 steps at batch 64 were ~18 of its
# ~32 s on one busy core; a smoke run checks the plumbing, not the reconstructions).
QUICK = {"steps": 20, "batch_size": 16, "n_per_world": 200, "warmup": 5}


def parse_args(argv=None) -> TrainConfig:
    """Build the argparse parser from TrainConfig's fields (their help texts) and return the filled config."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    choices = {"model": ["vae", "fsq", "both"], "device": ["auto", "cpu", "cuda", "mps"]}
    choices["precision"] = ["auto", "bf16", "fp32"]
    add_config_flags(p, TrainConfig, choices)
    cfg = TrainConfig(**vars(p.parse_args(argv)))
    if cfg.quick:  # the smoke run's sizes, except where a flag was typed
        given = given_flags(p, argv)
        cfg = dataclasses.replace(cfg, **{k: v for k, v in QUICK.items() if k not in given})
    return cfg


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to cfg.lr, then cosine decay to 5 % of it."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def train_one(name: str, cfg: TrainConfig, frames: torch.Tensor, device: torch.device, out_dir: Path) -> dict:
    """Train one codec on uint8 frames (N, 64, 64, 3); return its checkpoint dict. Pictures -> out_dir."""
    seed_everything(cfg.seed)
    model = build_model(name, dataclasses.asdict(cfg)).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)
    history = {"step": [], "loss": [], "recon": [], "kl": []}
    t0 = time.time()
    bar = tqdm(range(cfg.steps), desc=f"train {name} ({n_params / 1e6:.2f} M params)")
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        idx = torch.from_numpy(rng.integers(0, len(frames), size=cfg.batch_size))
        x = frames[idx].permute(0, 3, 1, 2).contiguous()  # (B, 3, 64, 64) uint8: channels first for convs
        x = x.to(device).float() / 255.0  # x: (B, 3, 64, 64) in [0, 1]
        with autocast(device, cfg.precision):
            out = model(x)
        recon_loss = weighted_mse(out["recon"].float(), x, cfg.fg_weight)
        if name == "vae":  # the VAE objective: reconstruction + beta * KL, KL averaged per latent value
            kl = kl_to_standard_normal(out["mu"].float(), out["logvar"].float()).mean()
            loss = recon_loss + cfg.beta * kl
        else:  # FSQ: no codebook to collapse, but tanh saturates (zero gradient) unless |z_pre| stays small
            kl = torch.zeros(())
            loss = recon_loss + cfg.z_penalty * (out["z_pre"].float().abs() - 2).clamp(min=0).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 20 == 0 or step == cfg.steps - 1:
            ms = (time.time() - t0) / (step + 1) * 1000
            history["step"].append(step)
            history["loss"].append(loss.item())
            history["recon"].append(recon_loss.item())
            history["kl"].append(kl.item())
            kl_shown = {"kl": f"{kl.item():.2f}"} if name == "vae" else {}  # FSQ has no KL term
            bar.set_postfix(loss=f"{loss.item():.5f}", **kl_shown, ms_per_step=f"{ms:.0f}")
    seconds = time.time() - t0
    save_recon_picture(name, model, x[:8], device, cfg, out_dir)
    return {
        "model": name,
        "config": dataclasses.asdict(cfg),
        "state_dict": model.state_dict(),
        "train_seconds": seconds,
        "steps": cfg.steps,
        "final_loss": history["loss"][-1],
        "history": history,
        "n_params": n_params,
    }


@torch.no_grad()
def save_recon_picture(name: str, model, x: torch.Tensor, device, cfg, out_dir: Path) -> None:
    """out_dir/train_recon_{name}.png: training frames x (B<=8, 3, 64, 64) above the model's
    reconstructions, each row labelled."""
    model.eval()
    with autocast(device, cfg.precision):
        out = model(x, sample=False) if name == "vae" else model(x)
    model.train()
    b = len(x)
    rows = torch.cat([x, out["recon"].float().clamp(0, 1)]).cpu()  # (2B, 3, 64, 64)
    grid = rows.view(2, b, 3, 64, 64).permute(0, 3, 1, 4, 2).reshape(2 * 64, b * 64, 3)
    fig, ax = plt.subplots(figsize=(8, 2.3))
    ax.imshow(grid.numpy(), interpolation="nearest")
    ax.set_yticks([32, 96], ["training\nframes", f"{name}\nreconstruction"], fontsize=8)
    ax.set_xticks([])
    ax.set_title(f"{name} after {cfg.steps} steps: training frames above, reconstructions below", fontsize=9)
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / f"train_recon_{name}.png", dpi=100)
    plt.close(fig)


def save_loss_plot(ckpts: dict, out_dir: Path) -> None:
    """out_dir/train_loss.png: the reconstruction loss of each trained model against step."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, ck in ckpts.items():
        ax.plot(ck["history"]["step"], ck["history"]["recon"], label=f"{name} reconstruction")
    ax.set(xlabel="step", ylabel="weighted MSE", yscale="log", title="chapter 1: training loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "train_loss.png", dpi=100)
    plt.close(fig)


def load_training_frames(cfg: TrainConfig, data_dir: Path) -> torch.Tensor:
    """The training frames as one uint8 tensor (N, 64, 64, 3), read whole from the cached Hugging Face
    dataset (simulated worlds, or your own video with --data) by ``data_utils.column``."""
    if cfg.data:
        from video_folder import load_video_folder  # OpenCV is only needed for your own video

        ds = load_video_folder(cfg.data, data_dir=data_dir)["train"]
    else:
        ds = load_frames(cfg.n_per_world, seed=cfg.seed, data_dir=data_dir)
    # one copy of the Arrow buffers, faster than with_format("torch")[:] (NOTES.md: the frame cache)
    return torch.from_numpy(column(ds, "frames"))  # (N, 64, 64, 3) uint8; batches are made channels-first


def main(argv=None) -> None:
    """Parse flags, build the cached dataset, train the chosen models and save checkpoints."""
    cfg = parse_args(argv)
    set_threads(cfg.threads)  # first line of output: how many threads, and why
    if cfg.steps < 1 or cfg.batch_size < 1 or cfg.n_per_world < 1:
        raise UserError("--steps, --batch-size and --n-per-world must be positive")
    root = output_root(cfg.out)
    ckpt_dir, out_dir = root / "checkpoints", root / "outputs"
    device = pick_device(cfg.device)
    print(f"device {device}, precision {cfg.precision}")
    frames = load_training_frames(cfg, root / "data")
    source = cfg.data if cfg.data else f"{cfg.n_per_world} per world"
    print(f"{len(frames)} training frames ({source})")
    names = ["vae", "fsq"] if cfg.model == "both" else [cfg.model]
    ckpts = {}
    for name in names:
        ckpts[name] = train_one(name, cfg, frames, device, out_dir)
        path = ckpt_dir / f"{name}.pt"
        save_checkpoint(ckpts[name], path)
        ck = ckpts[name]
        summary = f"{ck['steps']} steps in {ck['train_seconds']:.0f} s, final loss {ck['final_loss']:.5f}"
        print(f"{name}: {summary}, saved {path}")
    save_loss_plot(ckpts, out_dir)
    again = [*(["--quick"] if cfg.quick else []), *(["--data", cfg.data] if cfg.data else [])]
    again += ["--out", cfg.out] if cfg.out else []
    print(f"pictures in {out_dir}; next: {command('validate.py', *again)}")


if __name__ == "__main__":
    exit_on_user_error(main)
