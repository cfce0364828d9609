"""Train chapter 3: one FSQ codec for both worlds, then 4 dynamics models per world:
concat, token and FiLM at equal steps (the comparison), then the main FiLM model.

    uv run train.py                 # everything (see the README's Results for measured minutes)
    uv run train.py --quick         # a smoke run in well under a minute
    uv run train.py --data my_data  # the codec and the dynamics models on your own dataset (README)

Stages: (1) chapter 1's FSQ autoencoder on frames of the toroidal dot and the point-mass room; (2) every
training trajectory encoded once to latent tokens; (3) for each world (dot: 5 discrete actions; wall:
continuous (dx, dy)) and each way of injecting the action (concat, token, film), a dynamics model trained
to classify the next frame's codes; on the dot, half of each batch reads its own open-loop predictions
(self-feeding). The comparison trains all three for the same --ablation-steps (150): same data, same
steps, same seed. Then the main model, FiLM trained longer (400 steps on the dot, 600 on the point mass),
is the one the targets are measured on ("film" in the checkpoint; the comparison's FiLM is "film_cmp").
Writes checkpoints/action_dynamics.pt and outputs/train_loss.png (under --out DIR if given). With --data,
a learner's dataset takes the place of the two worlds.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm import tqdm

from data_utils import N_ACTIONS, WORLDS, load_own_dataset, load_trajectories
from models import (
    ActionDynamics,
    FSQAutoencoder,
    classification_loss,
    latents_to_tokens,
    rollout,
    tokens_to_digits,
    weighted_mse,
)
from utils import (
    OUT_HELP,
    UserError,
    autocast,
    command,
    exit_on_user_error,
    given_flags,
    out_args,
    output_root,
    pick_device,
    save_checkpoint,
    seed_everything,
    set_threads,
)

LEVELS = (8, 5, 5, 5)  # FSQ levels of the codec: 1000 codes, 4 channels per latent cell
CONDITIONINGS = ("concat", "token", "film")
# How each world's actions enter a model: a menu of 5 moves for the dot, a 2-number push for the wall.
# ActionDynamics takes both fields; a discrete encoder ignores action_dim, a continuous one n_actions.
ACTIONS = {
    "dot": {"kind": "discrete", "n_actions": N_ACTIONS, "action_dim": 2},
    "wall": {"kind": "continuous", "n_actions": N_ACTIONS, "action_dim": 2},
}
OWN = "own"  # the name a learner's dataset (--data) goes by in the checkpoint and the logs


@dataclass
class TrainConfig:
    """Every training setting; each field is also a command-line flag (--field-name)."""

    n_traj: int = 1000  # training trajectories per world
    traj_len: int = 12  # frames per trajectory (11 random actions)
    context: int = 3  # frames a dynamics model reads at once (training clips are one frame longer)
    codec_steps: int = 600  # FSQ autoencoder steps (batch 64, both worlds mixed)
    codec_lr: float = 3e-3
    dot_share: float = 0.67  # fraction of each codec batch from the dot world (its 3-px dot is the hard part)
    codec_ch: int = 16  # codec base width, as chapter 1's default
    fg_weight: float = 50.0  # foreground pixels count this many times more in the codec loss (chapter 1: 20)
    z_penalty: float = 1.0  # keeps the pre-quantisation latent inside tanh's working range (see below)
    dyn_steps: int = 400  # steps of the dot's main FiLM model (the one the targets are measured on)
    wall_dyn_steps: int = 600  # steps of the point mass's main FiLM model: its loss was still falling at 400
    ablation_steps: int = (
        150  # steps of every model in the comparison (concat, token, film_cmp): equal budgets
    )
    head: str = "classification"  # classification (cross-entropy over FSQ digits) or regression (MSE)
    rollout_weight: float = 0.0  # regression only: weight of an open-loop rollout loss (0 = none)
    self_feed: float = 0.5  # classification: share of each batch that reads its own dreamt frames 1, 2
    self_feed_worlds: str = "dot"  # worlds whose models self-feed (it cost the point mass accuracy)
    snap: int = 1  # regression only: snap predictions to the FSQ grid inside the rollout loss (1) or not (0)
    batch_size: int = 16  # clips per step: each is 3 frames x 256 cell tokens
    lr: float = 3e-3
    dim: int = 64  # transformer width
    depth: int = 2  # factorised blocks: two 3x3 convolutions see a 5x5-cell window, 8 px on each side
    methods: str = ",".join(CONDITIONINGS)  # which conditionings to train (comma separated)
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # auto (bf16 where the hardware is fast at it), bf16 or fp32
    threads: int = 0  # torch threads; 0: the cores free right now (see utils.choose_threads)
    data: str = ""  # a dataset folder (save_to_disk) to train on instead of the two worlds
    out: str = ""  # the output root for data/, checkpoints/ and outputs/ ("": this chapter's folder)
    quick: bool = False


HELP = {
    "data": "your own dataset, a folder written by datasets' save_to_disk with 'frames' (T, 64, 64, 3) uint8"
    " and 'actions' columns (schema in the README); trains on it instead of the two worlds",
    "out": OUT_HELP,
}
# The smoke run: every stage, model and picture on a narrower transformer (dim 32, batch 4): at dim 64 and
# batch 16 its dynamics steps and validate's dreams were most of the smoke run's ~60 s on one core.
QUICK = {
    "n_traj": 40, "codec_steps": 20, "dyn_steps": 8, "wall_dyn_steps": 8, "ablation_steps": 8,
    "batch_size": 4, "dim": 32,
}  # fmt: skip


def parse_args(argv=None) -> TrainConfig:
    """Build the argparse parser from TrainConfig's fields and return the filled config."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    choices = {"device": ["auto", "cpu", "cuda", "mps"], "precision": ["auto", "bf16", "fp32"]}
    choices["head"] = ["classification", "regression"]
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            p.add_argument(flag, action="store_true", help="tiny data and few steps: a smoke run")
        else:
            typ = {"int": int, "float": float, "str": str}[f.type]
            helps = HELP.get(f.name, f"(default: {f.default})")
            p.add_argument(flag, type=typ, default=f.default, choices=choices.get(f.name), help=helps)
    cfg = TrainConfig(**vars(p.parse_args(argv)))
    if cfg.quick:  # the smoke run's sizes, except where a flag was typed
        given = given_flags(p, argv)
        cfg = dataclasses.replace(cfg, **{k: v for k, v in QUICK.items() if k not in given})
    return cfg


def cosine_lr(step: int, total: int, peak: float, warmup: int = 30) -> float:
    """Linear warm-up, then cosine decay to 5 % of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup))))


def train_codec(cfg: TrainConfig, frames: dict, device) -> tuple[FSQAutoencoder, dict]:
    """Stage 1: chapter 1's FSQ autoencoder on single frames {world: (M, 3, 64, 64) uint8}.

    Each batch holds 64 frames: ``dot_share`` of them from the dot and the rest from the wall, or all 64
    from the one dataset given with --data.
    """
    seed_everything(cfg.seed)
    codec = FSQAutoencoder(LEVELS, ch=cfg.codec_ch).to(device)
    opt = torch.optim.Adam(codec.parameters(), lr=cfg.codec_lr)
    n_dot = round(64 * cfg.dot_share)
    per_batch = {"dot": n_dot, "wall": 64 - n_dot} if set(frames) == set(WORLDS) else {w: 64 for w in frames}
    rng, hist, t0 = np.random.default_rng(cfg.seed), {"step": [], "loss": []}, time.time()
    for step in (bar := tqdm(range(cfg.codec_steps), desc="stage 1: FSQ codec")):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, cfg.codec_steps, cfg.codec_lr)
        x = torch.cat([f[rng.integers(0, len(f), per_batch[w])] for w, f in frames.items()])
        x = x.to(device).float() / 255.0  # (64, 3, 64, 64)
        with autocast(device, cfg.precision):
            z = codec.encoder(x).float()  # (64, D, 16, 16) before FSQ's tanh and rounding
            recon = codec.decode(codec.fsq(z)).float()
        # Without the penalty, Adam pushed z to |z| ~ 120-370 within 50 steps (NOTES.md): tanh saturates,
        # its gradient vanishes, the encoder is dead and every frame decodes to the empty room (measured:
        # dot and agent erased in 100 % of frames after 800 steps). A hinge on |z| > 2 keeps tanh in its
        # working range.
        loss = (
            weighted_mse(recon, x, cfg.fg_weight) + cfg.z_penalty * (z.abs() - 2).clamp(min=0).pow(2).mean()
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 10 == 0 or step == cfg.codec_steps - 1:
            hist["step"].append(step)
            hist["loss"].append(loss.item())
            bar.set_postfix(loss=f"{loss.item():.5f}")
    hist["seconds"] = time.time() - t0
    return codec.eval(), hist


@torch.no_grad()
def encode_frames(codec: FSQAutoencoder, frames: np.ndarray, device, batch: int = 500) -> torch.Tensor:
    """uint8 frames (B, T, 64, 64, 3) -> FSQ latent tokens (B, T, 256, 4), one per cell, encoded once."""
    b, t = frames.shape[:2]
    flat = frames.reshape(b * t, 64, 64, 3)
    out = []
    for i in tqdm(range(0, len(flat), batch), desc="stage 2: encode frames", leave=False):
        x = torch.from_numpy(flat[i : i + batch]).permute(0, 3, 1, 2).to(device).float() / 255.0
        out.append(codec.encode(x).cpu())  # (b, 4, 16, 16) quantised latents
    return latents_to_tokens(torch.cat(out).view(b, t, 4, 16, 16))


def train_dynamics(
    world: str, method: str, cfg: TrainConfig, tokens, actions, spec: dict, device, steps: int
):
    """Stage 3: one action-conditioned dynamics model on random clips of encoded trajectories.

    Args:
        tokens: (N, T, 256, 4) training tokens. actions: (N, T-1) int64 or (N, T-1, A) float32.
        spec: how the actions enter, {"kind": "discrete" | "continuous", "n_actions", "action_dim"}.
        steps: optimiser steps (batch ``cfg.batch_size``); the same seed gives every model the same clips.
    Returns:
        the model (eval mode) and its loss history.
    """
    seed_everything(cfg.seed)
    model = ActionDynamics(
        method, spec["kind"], spec["n_actions"], spec["action_dim"], dim=cfg.dim, depth=cfg.depth,
        max_frames=cfg.context, head=cfg.head,
    )  # fmt: skip
    model = model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    rng, hist, t0 = np.random.default_rng(cfg.seed + 1), {"step": [], "loss": []}, time.time()
    n_in, clip_len = cfg.context, cfg.context + 1  # frames read; each predicts the next
    for step in (bar := tqdm(range(steps), desc=f"stage 3: {world} / {method}, {steps} steps")):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, steps, cfg.lr)
        traj = torch.from_numpy(rng.integers(0, len(tokens), cfg.batch_size))
        start = torch.from_numpy(rng.integers(0, tokens.shape[1] - clip_len + 1, cfg.batch_size))
        idx = start[:, None] + torch.arange(clip_len)  # (B, clip_len) frame indices
        clip = tokens[traj[:, None], idx].to(device)  # (B, clip_len, N, P)
        act = actions[traj[:, None], idx[:, :n_in]].to(device)  # (B, clip_len-1[, A]) a_t for t < last
        inp = clip[:, :n_in]  # (B, n_in, N, P) teacher forcing: every input frame is true
        feeds = cfg.head == "classification" and world in cfg.self_feed_worlds.split(",")
        m = round(cfg.self_feed * cfg.batch_size) if feeds else 0
        if m > 0:  # self-feeding: the first m clips read the model's own open-loop dream after frame 0
            with torch.no_grad():
                dreamt = rollout(model, clip[:m, 0], act[:m, : n_in - 1])  # (m, n_in-1, N, P) argmax codes
            inp = torch.cat([inp[:m, :1], dreamt], dim=1)
            inp = torch.cat([inp, clip[m:, :n_in]])  # (B, n_in, N, P); the targets stay the true frames
        with autocast(device, cfg.precision):
            out = model(inp, act).float()
            if cfg.head == "classification":  # which FSQ digit will each cell hold next?
                loss = classification_loss(out, tokens_to_digits(clip[:, 1:], LEVELS), LEVELS)
            else:
                loss = (out - clip[:, 1:]).pow(2).mean()
            if cfg.rollout_weight > 0 and cfg.head == "regression":  # open loop: it reads its own output
                dream = rollout(model, clip[:, 0], act, snap=bool(cfg.snap)).float()
                loss = loss + cfg.rollout_weight * (dream - clip[:, 1:]).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 10 == 0 or step == steps - 1:
            hist["step"].append(step)
            hist["loss"].append(loss.item())
            ms = (time.time() - t0) / (step + 1) * 1000
            bar.set_postfix(loss=f"{loss.item():.5f}", ms_per_step=f"{ms:.0f}")
    hist["seconds"] = time.time() - t0
    return model.eval(), hist


def save_loss_plot(hists: dict, worlds: list, out_dir) -> None:
    """out_dir/train_loss.png: the codec's loss and every dynamics model's loss against step."""
    fig, axes = plt.subplots(1, 1 + len(worlds), figsize=(4.5 + 4.25 * len(worlds), 3.5))
    axes[0].plot(hists["codec"]["step"], hists["codec"]["loss"])
    axes[0].set(title="FSQ codec (weighted MSE)", xlabel="step", yscale="log")
    for ax, world in zip(axes[1:], worlds, strict=True):
        for name, h in hists.items():
            if name.startswith(world + "/"):
                ax.plot(h["step"], h["loss"], label=name.split("/")[1])
        ax.set(title=f"{world}: dynamics loss", xlabel="step", yscale="log")
        ax.legend()
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "train_loss.png", dpi=100)
    plt.close(fig)


def main(argv=None) -> None:
    """Run the three stages and save one checkpoint holding the codec and all dynamics models."""
    cfg = parse_args(argv)
    set_threads(cfg.threads)  # first line of output: how many threads, and why
    methods = [m for m in cfg.methods.split(",") if m]
    if (
        min(
            cfg.n_traj, cfg.dyn_steps, cfg.wall_dyn_steps, cfg.ablation_steps, cfg.codec_steps, cfg.batch_size
        )
        < 1
        or cfg.traj_len <= cfg.context
    ):
        raise UserError("--n-traj, --*-steps, --batch-size must be positive and --traj-len > --context")
    if not set(cfg.self_feed_worlds.split(",")) - {""} <= {*WORLDS, OWN}:
        raise UserError(f"--self-feed-worlds must be a comma-separated subset of {','.join([*WORLDS, OWN])}")
    if not methods or not set(methods) <= set(CONDITIONINGS):
        raise UserError(f"--methods must be a comma-separated subset of {','.join(CONDITIONINGS)}")
    device = pick_device(cfg.device)
    print(f"device {device}, precision {cfg.precision}")
    root = output_root(cfg.out)
    if cfg.data:  # a learner's own dataset, checked on load: a wrong schema or shape is one line
        try:
            data = {OWN: load_own_dataset(cfg.data, min_frames=cfg.context + 1)}
        except ValueError as e:
            raise UserError(f"--data: {e}") from None
        actions_of, (n, t) = {OWN: data[OWN]["spec"]}, data[OWN]["frames"].shape[:2]
        print(f"--data: {n} episodes of {t} frames, {actions_of[OWN]['kind']} actions from {cfg.data}")
    else:
        data = {
            w: load_trajectories(w, cfg.n_traj, cfg.traj_len, seed=cfg.seed, data_dir=root / "data")
            for w in WORLDS
        }
        actions_of = ACTIONS
    t_start, cpu_start = time.time(), time.process_time()
    frames = {
        w: torch.from_numpy(d["frames"].reshape(-1, 64, 64, 3)).permute(0, 3, 1, 2) for w, d in data.items()
    }
    codec, codec_hist = train_codec(cfg, frames, device)
    hists, states, steps_of = {"codec": codec_hist}, {}, {}
    for world, spec in actions_of.items():
        tokens = encode_frames(codec, data[world]["frames"], device)  # (N, T, 256, 4)
        actions = torch.from_numpy(data[world]["actions"])
        # The comparison: every method the same number of steps. Then the main model: FiLM, trained longer.
        runs = [(m if m != "film" else "film_cmp", m, cfg.ablation_steps) for m in methods]
        if "film" in methods:
            runs.append(("film", "film", cfg.wall_dyn_steps if world == "wall" else cfg.dyn_steps))
        for name, method, steps in runs:
            key = f"{world}/{name}"
            model, hists[key] = train_dynamics(world, method, cfg, tokens, actions, spec, device, steps)
            states[key], steps_of[key] = model.state_dict(), steps
    seconds, cpu_seconds = time.time() - t_start, time.process_time() - cpu_start
    ckpt = {
        "model": "action-dynamics",
        "config": dataclasses.asdict(cfg)
        | {"levels": list(LEVELS), "trained": list(states), "actions": actions_of},
        "codec": codec.state_dict(),
        "dynamics": states,
        "train_seconds": seconds,
        "train_cpu_seconds": cpu_seconds,  # all threads' CPU time: what a busy machine does not inflate
        "seconds": {k: h["seconds"] for k, h in hists.items()},
        "steps": steps_of,  # optimiser steps of each dynamics model
    }
    path = root / "checkpoints" / "action_dynamics.pt"
    save_checkpoint(ckpt, path)
    save_loss_plot(hists, list(actions_of), root / "outputs")
    finals = ", ".join(f"{k} {h['loss'][-1]:.5f}" for k, h in hists.items())
    stages = ", ".join(f"{k} {h['seconds']:.0f}" for k, h in hists.items())
    print(f"seconds per stage: {stages}")
    print(f"trained in {seconds:.0f} s ({cpu_seconds:.0f} CPU-seconds); final losses: {finals}; saved {path}")
    if not cfg.data:  # validate.py measures positions in the two worlds, which a learner's data lacks
        print(f"next: {command('validate.py', *(['--quick'] if cfg.quick else []), *out_args(cfg.out))}")


if __name__ == "__main__":
    exit_on_user_error(main)
