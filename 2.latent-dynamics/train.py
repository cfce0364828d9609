"""Train chapter 2: an FSQ codec for bouncing balls, then latent dynamics models on its latents.

    uv run train.py                      # everything (see the README for the minutes it takes)
    uv run train.py --init-from checkpoints/codec.pt   # skip stage 1: reuse the codec of an earlier run
    uv run train.py --init-from ../1.video-encoder-decoder/checkpoints/fsq.pt   # chapter 1's
                                         # (its decoder never learnt this chapter's code for empty cells)
    uv run train.py --quick              # a smoke run in well under a minute
    uv run train.py --data ~/my_videos   # on your own .mp4/.avi files or image frames (video_folder.py)
    uv run train.py --out /tmp/run1      # data/, checkpoints/ and outputs/ under /tmp/run1

Stages: (1) the FSQ autoencoder of chapter 1 on ball frames, empty cells on one code; (2) every
training video encoded once to latent tokens (before rounding); (3) three dynamics models on them:
regression with teacher forcing, a pixel loss and noise on its context (--context-noise), the same
model fine-tuned with a rollout loss (the pixel loss on every unrolled frame too), and a
classification head on the rounded codes. Writes
checkpoints/dynamics.pt, checkpoints/codec.pt (chapter 1's format) and outputs/train_loss.png, and
caches the videos under data/; all three folders sit under --out DIR (default: this chapter's folder).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from losses import LEVELS, noisy_context, pixel_loss, rollout_loss
from tqdm import tqdm

from data_utils import load_videos, video_array
from models import (
    FSQAutoencoder,
    LatentDynamics,
    classification_loss,
    latents_to_tokens,
    snap_to_grid,
    tokens_to_digits,
    weighted_mse,
)
from utils import (
    UserError,
    autocast,
    command,
    exit_on_user_error,
    given_flags,
    load_checkpoint,
    output_root,
    pick_device,
    save_checkpoint,
    seed_everything,
    set_threads,
)


@dataclass
class TrainConfig:
    """Every training setting; each field is also a command-line flag (--field-name)."""

    n_videos: int = 2000  # training videos of bouncing balls
    video_len: int = 16  # frames per training video
    clip_len: int = 4  # frames per training clip: the model reads clip_len - 1 and predicts each next one
    codec_steps: int = 1000  # FSQ autoencoder steps (skipped with --init-from)
    codec_ch: int = 16  # codec base width, chapter 1's default (32 is 3.5x slower on a 2-core CPU)
    dyn_steps: int = 800  # teacher-forcing steps of the regression model (its loss is flat after ~400)
    cls_steps: int = (
        800  # classification: as many steps as regression, on the same clips, for a fair comparison
    )
    rollout_steps: int = 200  # fine-tuning steps with the rollout loss (~3 plain steps each; 400 no better)
    rollout_len: int = 3  # open-loop steps unrolled in the rollout loss
    pixel_loss: float = (
        1.0  # regression: weight of a foreground-weighted pixel loss through the frozen decoder
    )
    lit_weight: float = 5.0  # rollout fine-tune: what a wrongly lit background pixel costs (1 before it)
    context_noise: float = 0.1  # regression: Gaussian noise of a random level up to this on the context
    batch_size: int = 16
    lr: float = 5e-3  # peak; a sweep of the whole run (1e-3, 3e-3, 5e-3, 8e-3) was best at 5e-3
    dim: int = 64  # transformer width
    depth: int = 4  # transformer blocks
    init_from: str = ""  # a chapter-1 fsq.pt to use as the codec instead of training one
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # auto (bf16 where the hardware is fast at it), bf16 or fp32
    threads: int = 0  # torch threads; 0: the cores free right now (see utils.choose_threads)
    quick: bool = False
    data: str = ""  # a folder of your own .mp4/.avi videos or image frames; "": the simulated balls
    out: str = ""  # output root for data/, checkpoints/ and outputs/; "": this chapter's folder


HELP = {
    "data": "a folder of your own .mp4/.avi files or image frames, cut into clips (default: the balls)",
    "out": "output root for data/, checkpoints/ and outputs/ (default: this chapter's folder)",
    "context_noise": "regression: add noise of a random level in [0, this] to the context latents, as"
    " GameNGen does against drift; 0: off (default: 0.1)",
}
# The smoke run: every stage, loss and picture, on a small model (the full-size transformer cost ~0.65 s
# per step at batch 16 on one busy core, and a smoke run needs no capacity), batch 4, few steps.
QUICK = {
    "n_videos": 24, "codec_steps": 20, "dyn_steps": 10, "cls_steps": 10, "rollout_steps": 2,
    "batch_size": 4, "dim": 32, "depth": 2,
}  # fmt: skip


def parse_args(argv=None) -> TrainConfig:
    """Build the argparse parser from TrainConfig's fields and return the filled config."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    choices = {"device": ["auto", "cpu", "cuda", "mps"], "precision": ["auto", "bf16", "fp32"]}
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            p.add_argument(flag, action="store_true")
        else:
            typ = {"int": int, "float": float, "str": str}[f.type]
            helptext = HELP.get(f.name, f"(default: {f.default})")
            p.add_argument(flag, type=typ, default=f.default, choices=choices.get(f.name), help=helptext)
    cfg = TrainConfig(**vars(p.parse_args(argv)))
    if cfg.quick:  # the smoke run's sizes, except where a flag was typed
        given = given_flags(p, argv)
        cfg = dataclasses.replace(cfg, **{k: v for k, v in QUICK.items() if k not in given})
    return cfg


def cosine_lr(step: int, total: int, peak: float, warmup: int = 50) -> float:
    """Linear warm-up, then cosine decay to 5 % of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup))))


def train_codec(cfg: TrainConfig, videos: torch.Tensor, device, ckpt=None) -> tuple[FSQAutoencoder, float]:
    """Stage 1: chapter 1's FSQ autoencoder, trained on single frames of the uint8 training videos
    (N, T, 64, 64, 3), or taken from ``ckpt`` (the --init-from checkpoint, already loaded)."""
    codec = FSQAutoencoder(LEVELS, ch=cfg.codec_ch).to(device)
    if ckpt is not None:
        ccfg = ckpt.get("config", {})
        if tuple(ccfg.get("fsq_levels", ())) != LEVELS or ccfg.get("ch") != cfg.codec_ch:
            raise UserError(
                f"{cfg.init_from}: codec config differs from this run's (levels {LEVELS}, ch {cfg.codec_ch});"
                f" pass --codec-ch {ccfg.get('ch')} if its levels match"
            )
        codec.load_state_dict(ckpt["state_dict"])
        return codec.eval(), 0.0
    frames = videos.reshape(-1, 64, 64, 3).permute(0, 3, 1, 2)  # (N*T, 3, 64, 64) uint8
    opt = torch.optim.Adam(codec.parameters(), lr=2e-3)
    rng, t0 = np.random.default_rng(cfg.seed), time.time()
    for step in (bar := tqdm(range(cfg.codec_steps), desc="stage 1: FSQ codec")):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(
                step, cfg.codec_steps, 2e-3, warmup=100
            )  # a shorter warm-up can stall FSQ on the mean frame
        x = frames[rng.integers(0, len(frames), 64)].to(device).float() / 255.0  # (64, 3, 64, 64)
        with autocast(device, cfg.precision):
            recon = codec(x)["recon"].float()
        loss = weighted_mse(recon, x, fg_weight=20.0)  # foreground weighting: see chapter 1
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.5f}")
    return codec.eval(), time.time() - t0


@torch.no_grad()
def encode_videos(codec: FSQAutoencoder, videos: torch.Tensor, device, batch: int = 512) -> torch.Tensor:
    """Stage 2: uint8 videos (N, T, 64, 64, 3) -> continuous latent tokens (N, T, 256, 4), encoded once.

    The latents are kept *before* FSQ's rounding: the regression head predicts these smooth values;
    ``snap_to_grid`` turns them into the discrete codes the classification head predicts.
    """
    n, t = videos.shape[:2]
    flat = videos.reshape(n * t, 64, 64, 3)
    out = []
    for i in tqdm(range(0, len(flat), batch), desc="stage 2: encode videos"):
        x = flat[i : i + batch].permute(0, 3, 1, 2).to(device).float() / 255.0  # (b, 3, 64, 64)
        out.append(codec.encode_continuous(x).cpu())  # (b, 4, 16, 16) latents before rounding
    z = torch.cat(out).view(n, t, 4, 16, 16)
    return latents_to_tokens(z)  # (N, T, 256, 4)


def train_dynamics(
    head: str, cfg, tokens, device, init=None, rollout=False, codec=None, videos=None
) -> tuple[LatentDynamics, dict]:
    """Stage 3: train one dynamics model on random clips of the encoded training videos.

    Args:
        head: "regression" or "classification". init: a state dict to start from (fine-tuning).
        rollout: add the rollout loss (and run cfg.rollout_steps instead of cfg.dyn_steps).
        Classification runs cfg.cls_steps.
        codec, videos: the frozen codec and the uint8 videos (N, T, 64, 64, 3), for the pixel loss.
    """
    seed_everything(cfg.seed)
    context = cfg.clip_len - 1  # the longest context the model reads
    model = LatentDynamics(head, LEVELS, dim=cfg.dim, depth=cfg.depth, max_frames=context).to(device)
    if init is not None:
        model.load_state_dict(init)
    steps = cfg.rollout_steps if rollout else (cfg.dyn_steps if head == "regression" else cfg.cls_steps)
    peak = cfg.lr * (0.3 if rollout else 1.0)  # fine-tuning takes smaller steps
    opt = torch.optim.AdamW(model.parameters(), lr=peak, weight_decay=0.01)
    rng, hist, t0 = np.random.default_rng(cfg.seed + 1), {"step": [], "loss": []}, time.time()
    name = f"{head}{' + rollout loss' if rollout else ''}"
    for step in (bar := tqdm(range(steps), desc=f"stage 3: {name}")):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, steps, peak, warmup=0 if rollout else 50)
        length = context + (cfg.rollout_len if rollout else 1)  # frames this step needs
        vid = torch.from_numpy(rng.integers(0, len(tokens), cfg.batch_size))
        start = torch.from_numpy(rng.integers(0, tokens.shape[1] - length + 1, cfg.batch_size))
        idx = start[:, None] + torch.arange(length)  # (B, length) frame indices
        clip = tokens[vid[:, None], idx].to(device)  # (B, length, N, P)
        inp = clip[:, :context]  # (B, context, N, P) what the model reads; the targets stay clean
        if head == "regression" and cfg.context_noise > 0:
            inp = noisy_context(inp, cfg.context_noise)
        with autocast(device, cfg.precision):
            out = model(inp).float()  # predictions of frames 1..context from every prefix
            pix = None
            if head == "regression":
                loss = (out - clip[:, 1 : context + 1]).pow(2).mean()  # teacher forcing: true (noisy) inputs
                if cfg.pixel_loss > 0:
                    frames = videos[vid[:, None], idx]  # (B, L, 64, 64, 3) uint8
                    frames = frames.to(device).permute(0, 1, 4, 2, 3).float() / 255.0  # (B, L, 3, 64, 64)
                    lit = cfg.lit_weight if rollout else 1.0  # see pixel_loss: only in the fine-tune
                    loss = loss + cfg.pixel_loss * pixel_loss(codec, out, frames[:, 1 : context + 1], lit)
                    pix = (cfg.pixel_loss, codec, frames, lit)
            else:
                loss = classification_loss(out, tokens_to_digits(clip[:, 1 : context + 1], LEVELS), LEVELS)
            if rollout:
                first = out[:, -1:]  # the unroll starts from this same context: 1 forward pass saved
                unroll = torch.cat([inp, clip[:, context:]], dim=1).float()  # the same (noisy) context
                loss = loss + rollout_loss(model, unroll, context, cfg.rollout_len, pix, first)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 10 == 0 or step == steps - 1:
            hist["step"].append(step)
            hist["loss"].append(loss.item())
            bar.set_postfix(
                loss=f"{loss.item():.5f}", ms_per_step=f"{(time.time() - t0) / (step + 1) * 1000:.0f}"
            )
    hist["seconds"] = time.time() - t0
    return model, hist


def save_loss_plot(hists: dict, out_dir: Path) -> None:
    """out_dir/train_loss.png: each dynamics model's training loss."""
    fig, axes = plt.subplots(1, len(hists), figsize=(4 * len(hists), 3))
    for ax, (name, h) in zip(np.atleast_1d(axes), hists.items(), strict=True):
        ax.plot(h["step"], h["loss"])
        ax.set(title=name, xlabel="step", yscale="log")
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "train_loss.png", dpi=100)
    plt.close(fig)


def load_training_videos(cfg: TrainConfig, data_dir: Path) -> torch.Tensor:
    """The training videos as one uint8 tensor (N, T, 64, 64, 3), read whole from the cached Hugging Face
    dataset (simulated balls, or clips of your own video with --data) by ``data_utils.video_array``."""
    if cfg.data:
        from video_folder import load_video_folder  # OpenCV is only needed for your own video

        ds = load_video_folder(cfg.data, cfg.video_len, data_dir=data_dir)["train"]
    else:
        ds = load_videos(cfg.n_videos, cfg.video_len, seed=cfg.seed, data_dir=data_dir)
    return torch.from_numpy(video_array(ds))  # one copy of the Arrow buffers (NOTES.md: the data layer)


def main(argv=None) -> None:
    """Run the three stages and save one checkpoint holding the codec and all dynamics models."""
    cfg = parse_args(argv)
    set_threads(cfg.threads)  # first line of output: how many threads, and why
    if (
        min(cfg.n_videos, cfg.dyn_steps, cfg.cls_steps, cfg.batch_size, cfg.rollout_len) < 1
        or cfg.clip_len < 2
    ):
        raise UserError(
            "--n-videos, --dyn-steps, --cls-steps, --batch-size, --rollout-len must be positive,"
            " --clip-len >= 2"
        )
    if cfg.video_len < cfg.clip_len - 1 + cfg.rollout_len:
        raise UserError("--video-len must be at least --clip-len - 1 + --rollout-len")
    root = output_root(cfg.out)
    ckpt_dir = root / "checkpoints"
    device = pick_device(cfg.device)
    seed_everything(cfg.seed)
    print(f"device {device}, precision {cfg.precision}")
    codec_init = load_checkpoint(cfg.init_from, "fsq") if cfg.init_from else None  # fails before the data
    videos = load_training_videos(cfg, root / "data")  # (N, T, 64, 64, 3) uint8
    print(f"{len(videos)} training videos of {videos.shape[1]} frames ({cfg.data or 'simulated balls'})")
    t_start = time.time()
    codec, codec_s = train_codec(cfg, videos, device, codec_init)
    if not cfg.init_from:  # in chapter 1's format, so `--init-from checkpoints/codec.pt` can reuse it
        codec_ckpt = {
            "model": "fsq",
            "state_dict": codec.state_dict(),
            "config": {"fsq_levels": list(LEVELS), "ch": cfg.codec_ch},
        }
        save_checkpoint(codec_ckpt, ckpt_dir / "codec.pt")
    tokens = encode_videos(codec, videos, device)  # (N, T, 256, 4) continuous latents
    codec.requires_grad_(False)  # frozen from here on: the pixel loss only flows through it
    codes = snap_to_grid(tokens, LEVELS)  # (N, T, 256, 4) the FSQ codes
    reg_tf, h_tf = train_dynamics("regression", cfg, tokens, device, codec=codec, videos=videos)
    init = reg_tf.state_dict()
    reg_ro, h_ro = train_dynamics(
        "regression", cfg, tokens, device, init=init, rollout=True, codec=codec, videos=videos
    )
    cls, h_cls = train_dynamics("classification", cfg, codes, device)
    seconds = time.time() - t_start
    hists = {"regression_tf": h_tf, "regression_rollout": h_ro, "classification": h_cls}
    ckpt = {
        "model": "latent-dynamics",
        "config": dataclasses.asdict(cfg) | {"levels": list(LEVELS)},
        "codec": codec.state_dict(),
        "regression_tf": reg_tf.state_dict(),
        "regression_rollout": reg_ro.state_dict(),
        "classification": cls.state_dict(),
        "train_seconds": seconds,
        "codec_seconds": codec_s,
        "loss_history": hists,  # per model: the logged steps and losses (plain lists) and its seconds
    }
    path = ckpt_dir / "dynamics.pt"
    save_checkpoint(ckpt, path)
    save_loss_plot(hists, root / "outputs")
    finals = ", ".join(f"{k} {h['loss'][-1]:.4f}" for k, h in hists.items())
    print(f"trained in {seconds:.0f} s; final losses: {finals}; saved {path}")
    again = [*(["--quick"] if cfg.quick else []), *(["--data", cfg.data] if cfg.data else [])]
    print(f"next: {command('validate.py', *again, *(['--out', cfg.out] if cfg.out else []))}")


if __name__ == "__main__":
    exit_on_user_error(main)
