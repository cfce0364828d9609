"""`uv run train.py --part memory`: the frozen encoder, then four predictors on the same features.

Stages: (1) simulate the training episodes of the two-room world (gaps 1..12, uniform) and cache them;
(2) train the conv autoencoder on their frames, freeze it, encode every frame once; (3) train four
predictors, teacher-forced over whole episodes, on the same features: a 3-frame context (part 1's),
a context as long as the episode (the upper bound), the 3-frame context plus a lookup bank, and plus a
neural memory. Writes checkpoints/memory.pt and outputs/memory_train_loss.png, outputs/memory_world.png.

Shape key: E episodes, T frames, N = 9 tokens, D feature dim, B batch.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm import tqdm
from training import warmup_cosine_lr

from .autoencoder import FrameAutoencoder
from .predictors import MemoryPredictor
from .world import EP_LEN, MAX_GAP, load_episodes
from utils import (
    UserError,
    command,
    config_parser,
    given_flags,
    output_root,
    pick_device,
    save_checkpoint,
    seed_everything,
    set_threads,
)

MODEL = "dino-wm-memory"  # the checkpoint's "model" entry


@dataclass
class MemoryTrainConfig:
    """Every setting of part 2's training; each is a flag (--field-name)."""

    n_episodes: int = 2000  # training episodes (gap uniform in 1..12)
    feat_dim: int = 16  # D: the autoencoder's token width
    ae_steps: int = 1500  # 600 left one seed in three with colours the read-out confused (NOTES.md)
    ae_batch: int = 128  # frames per autoencoder step
    pred_steps: int = 1000  # steps per predictor (teacher-forced, whole episodes)
    batch_size: int = 16  # episodes per predictor step
    dim: int = 64  # predictor width
    depth: int = 3
    heads: int = 2
    window: int = 3  # the context of the baseline and of both memories (part 1's num_hist)
    capacity: int = 8  # the lookup bank, in frames (first in, first out)
    mem_lr: float = 0.5  # theta: the neural memory's write step
    mem_momentum: float = 0.5  # eta
    mem_decay: float = 0.05  # alpha: forgetting per write
    lr: float = 2e-3
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # torch threads; 0: the cores free right now
    out: str = ""  # output root for data/, checkpoints/ and outputs/ ("": the chapter's folder)
    quick: bool = False


QUICK = {"n_episodes": 48, "ae_steps": 20, "ae_batch": 32, "pred_steps": 4, "batch_size": 4}


def parse_args(argv=None) -> MemoryTrainConfig:
    """Flags -> MemoryTrainConfig (--quick shrinks only what was not typed)."""
    p = config_parser(
        MemoryTrainConfig, "train.py --part memory", __doc__, "tiny data and few steps: a smoke run"
    )
    cfg = MemoryTrainConfig(**vars(p.parse_args(argv)))
    if cfg.quick:
        typed = given_flags(p, argv)
        cfg = dataclasses.replace(cfg, **{k: v for k, v in QUICK.items() if k not in typed})
    sizes = (
        "n_episodes",
        "feat_dim",
        "ae_steps",
        "ae_batch",
        "pred_steps",
        "batch_size",
        "window",
        "capacity",
    )
    bad = [f"--{k.replace('_', '-')} {getattr(cfg, k)}" for k in sizes if getattr(cfg, k) < 1]
    if bad or cfg.window >= EP_LEN or not 0 <= cfg.mem_decay < 1:
        raise UserError(f"bad flags: {', '.join(bad) or 'window or mem-decay'} (sizes >= 1, --window < "
                        f"{EP_LEN}, 0 <= --mem-decay < 1)")  # fmt: skip
    return cfg


def predictor_specs(cfg: MemoryTrainConfig, feat_dim: int) -> dict[str, dict]:
    """The four predictors' constructor arguments: the same ViT, four views of the past."""
    base = {"feat_dim": feat_dim, "dim": cfg.dim, "depth": cfg.depth, "heads": cfg.heads}
    neural = {"lr": cfg.mem_lr, "momentum": cfg.mem_momentum, "decay": cfg.mem_decay}
    return {
        "no_memory": {**base, "window": cfg.window},
        "long_context": {**base, "window": EP_LEN},  # sees the whole episode: the upper bound
        "lookup": {**base, "window": cfg.window, "memory": "lookup", "capacity": cfg.capacity},
        "neural": {**base, "window": cfg.window, "memory": "neural", "neural": neural},
    }


def to_float(frames: np.ndarray, device) -> torch.Tensor:
    """uint8 frames (..., 24, 24, 3) -> float (M, 3, 24, 24) in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).reshape(-1, 24, 24, 3).to(device)
    return x.permute(0, 3, 1, 2).float() / 255.0


def train_autoencoder(cfg, frames: np.ndarray, device) -> tuple[FrameAutoencoder, dict]:
    """Stage 2: the encoder every predictor shares, by reconstruction (MSE). frames: (M, 24, 24, 3) uint8."""
    torch.manual_seed(cfg.seed)
    ae = FrameAutoencoder(cfg.feat_dim).to(device)
    opt = torch.optim.AdamW(ae.parameters(), lr=cfg.lr)
    rng, hist, t0 = np.random.default_rng(cfg.seed + 1), {"step": [], "loss": []}, time.time()
    for step in (bar := tqdm(range(cfg.ae_steps), desc="memory 1/2: autoencoder")):
        for g in opt.param_groups:
            g["lr"] = warmup_cosine_lr(step, cfg.ae_steps, cfg.lr)
        x = to_float(frames[rng.integers(0, len(frames), cfg.ae_batch)], device)  # (B, 3, 24, 24)
        loss = (ae(x) - x).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 10 == 0 or step == cfg.ae_steps - 1:
            hist["step"].append(step)
            hist["loss"].append(loss.item())
            bar.set_postfix(mse=f"{loss.item():.5f}")
    hist["seconds"] = time.time() - t0
    return ae.eval().requires_grad_(False), hist


@torch.no_grad()
def encode(ae: FrameAutoencoder, frames: np.ndarray, device, batch: int = 1024) -> torch.Tensor:
    """uint8 frames (E, T, 24, 24, 3) -> raw tokens (E, T, N, D) on the CPU."""
    flat = frames.reshape(-1, 24, 24, 3)
    z = torch.cat(
        [ae.encode(to_float(flat[i : i + batch], device)).cpu() for i in range(0, len(flat), batch)]
    )
    return z.view(*frames.shape[:2], *z.shape[1:])


def fit_predictor(model, z: torch.Tensor, actions: torch.Tensor, cfg, device, label: str) -> dict:
    """Teacher forcing over whole episodes: one pass predicts every next frame, MSE in feature space.

    Args:
        z: (E, T, N, D) standardised features; actions: (E, T-1) long.
    """
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    rng, hist, t0 = np.random.default_rng(cfg.seed + 2), {"step": [], "loss": []}, time.time()
    model.train()
    for step in (bar := tqdm(range(cfg.pred_steps), desc=label)):
        for g in opt.param_groups:
            g["lr"] = warmup_cosine_lr(step, cfg.pred_steps, cfg.lr)
        idx = torch.from_numpy(rng.integers(0, len(z), cfg.batch_size))
        zb, ab = z[idx].to(device), actions[idx].to(device)  # (B, T, N, D), (B, T-1)
        pred = model(zb[:, :-1], ab)  # (B, T-1, N, D): frames 1..T-1
        loss = (pred - zb[:, 1:]).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 10 == 0 or step == cfg.pred_steps - 1:
            hist["step"].append(step)
            hist["loss"].append(loss.item())
            ms = (time.time() - t0) / (step + 1) * 1000
            bar.set_postfix(feat_mse=f"{loss.item():.4f}", ms_per_step=f"{ms:.0f}")
    hist["seconds"] = time.time() - t0
    return hist


def save_pictures(hists: dict, frames: np.ndarray, gaps: np.ndarray, out_dir) -> None:
    """outputs/memory_train_loss.png (every stage's loss) and memory_world.png (episodes, frame by frame)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
    axes[0].plot(hists["autoencoder"]["step"], hists["autoencoder"]["loss"])
    axes[0].set(title="autoencoder (pixel MSE)", xlabel="step", yscale="log")
    for name, h in hists.items():
        if name != "autoencoder":
            axes[1].plot(h["step"], h["loss"], label=name)
    axes[1].set(title="predictors: teacher-forced feature MSE", xlabel="step", yscale="log")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(out_dir / "memory_train_loss.png", dpi=100)
    plt.close(fig)
    rows = [np.concatenate(list(np.pad(ep, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=255)), 1)
            for ep in frames[:4]]  # fmt: skip
    fig, ax = plt.subplots(figsize=(12, 3))
    ax.imshow(np.concatenate(rows, 0), interpolation="nearest")
    ax.set(title=f"four training episodes, frames 0..{EP_LEN - 1} (gaps {', '.join(map(str, gaps[:4]))})")
    ax.axis("off")
    fig.savefig(out_dir / "memory_world.png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def main(argv=None) -> None:
    """Train part 2's encoder and four predictors; save one checkpoint."""
    cfg = parse_args(argv)
    set_threads(cfg.threads)  # first line of output: how many threads, and why
    device = pick_device(cfg.device)
    print(f"device {device}, world: two rooms, gaps 1..{MAX_GAP}")
    seed_everything(cfg.seed)
    root = output_root(cfg.out)
    gaps = np.random.default_rng(cfg.seed).integers(1, MAX_GAP + 1, cfg.n_episodes)
    data = load_episodes(gaps, cfg.seed, root / "data")
    t_start, hists = time.time(), {}
    ae, hists["autoencoder"] = train_autoencoder(cfg, data["frames"].reshape(-1, 24, 24, 3), device)
    z = encode(ae, data["frames"], device)  # (E, T, N, D): every frame encoded once, then frozen
    mu, sigma = z.reshape(-1, z.shape[-1]).mean(0), z.reshape(-1, z.shape[-1]).std(0) + 1e-6
    z = (z - mu) / sigma  # standardised per channel, as in part 1
    actions = torch.from_numpy(data["actions"])
    predictors = {}
    for name, spec in predictor_specs(cfg, cfg.feat_dim).items():
        torch.manual_seed(cfg.seed)
        model = MemoryPredictor(**spec).to(device)
        hists[name] = fit_predictor(model, z, actions, cfg, device, f"memory 2/2: {name}")
        predictors[name] = {"spec": spec, "state": model.state_dict()}
    seconds = time.time() - t_start
    ckpt = {
        "model": MODEL,
        "config": dataclasses.asdict(cfg),
        "autoencoder": ae.state_dict(),
        "mu": mu,
        "sigma": sigma,
        "predictors": predictors,
        "train_seconds": seconds,
        "seconds": {k: h["seconds"] for k, h in hists.items()},
    }
    path = root / "checkpoints" / "memory.pt"
    save_checkpoint(ckpt, path)
    save_pictures(hists, data["frames"], gaps, root / "outputs")
    finals = ", ".join(f"{k} {h['loss'][-1]:.4f}" for k, h in hists.items())
    print(f"trained in {seconds:.0f} s; final losses: {finals}; saved {path}")
    again = [*(["--quick"] if cfg.quick else []), *(["--out", cfg.out] if cfg.out else [])]
    print("next: " + command("validate.py", "--part", "memory", *again))  # the same --quick and --out
