"""Train chapter 5: a small DINO encoder, then DINO-WM's feature predictor on top of it, frozen.

    uv run train.py            # everything (see README for minutes on a 2-core CPU)
    uv run train.py --quick    # a smoke run in well under a minute
    uv run train.py --encoder dinov2_vits14   # real DINOv2 through torch.hub, if its weights are reachable
    uv run train.py --part memory   # part 2: two rooms, a lookup bank and a neural memory (memory/)

Stages: (1) DINO self-distillation of a small ViT on frames of the arm with nuisance (student + EMA
teacher, centring and sharpening; the two views are two renders of one pose under different nuisance),
then frozen; (2) every training frame encoded once by each frozen encoder (our DINO, the same ViT at
random init, raw pixel patches), and one feature predictor per encoder, plus one without the causal
mask (the ablation); (3) a pixel decoder on the DINO features, to look.
Writes checkpoints/dino_wm.pt, outputs/train_loss.png and outputs/world.png (the world and its two views).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from encoders import DINOV2, FrozenEncoder, PixelPatches, load_dinov2
from pictures import save_world_picture
from training import train_decoder, train_dino, train_predictors

from data_utils import WORLD, load_trajectories
from models import ViT
from utils import (
    PART_HELP,
    PARTS,
    UserError,
    command,
    exit_on_user_error,
    given_flags,
    output_root,
    pick_device,
    save_checkpoint,
    seed_everything,
    set_threads,
    split_part,
)


@dataclass
class TrainConfig:
    """Every training setting; each field is also a command-line flag (--field-name)."""

    encoder: str = "dino"  # dino (trained here) or dinov2_vits14 (torch.hub, needs the weights)
    n_traj: int = 500  # training trajectories
    traj_len: int = 16  # kept frames per trajectory (frame skip 5)
    vit_dim: int = 64  # the DINO ViT's width (16-px patches -> 16 tokens)
    vit_depth: int = 4
    dino_steps: int = 2000
    dino_batch: int = 32  # poses per DINO step; each gives 2 views (two renders under different nuisance)
    patch_weight: float = 1.0  # weight of the iBOT-style patch loss beside DINO's [CLS] loss (0 = none)
    mask_ratio: tuple = (0.1, 0.5)  # fraction of the student's patches hidden behind the mask token
    n_prototypes: int = 256  # K: the DINO heads' output size
    teacher_temp: float = 0.01  # sharpening: the teacher's temperature (the student's is 0.1; DINO: 0.04)
    ema_start: float = 0.996  # the teacher's EMA momentum, cosine-scheduled to 1
    dino_lr: float = 2e-3
    num_hist: int = 3  # frames of context the predictor reads
    pred_dim: int = 64  # predictor width
    pred_depth: int = 3
    pred_steps: int = 3000  # teacher-forced steps per predictor (DINO-WM's recipe)
    finetune_steps: int = 600  # then steps on the rollout loss (0 = teacher forcing alone)
    batch_size: int = 32  # clips of num_hist + 1 frames per step
    proprio_weight: float = 1.0  # weight of the proprio MSE beside the feature MSE
    rollout_steps: int = 5  # open-loop steps of that loss: as far as the planner imagines
    rollout_window: int = 1  # frames the predictor reads in that rollout (1: cheap, as the planner does)
    decoder_steps: int = 300
    lr: float = 2e-3
    compare: int = 1  # 1: also train the comparison encoders' predictors and the no-mask ablation
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # torch threads; 0: the cores free right now (see utils.choose_threads)
    out: str = ""  # output root for data/, checkpoints/ and outputs/ ("": this chapter's folder)
    quick: bool = False


QUICK = {
    "n_traj": 24,
    "dino_steps": 6,
    "dino_batch": 8,
    "pred_steps": 6,
    "finetune_steps": 4,
    "decoder_steps": 6,
}


def parse_args(argv=None) -> TrainConfig:
    """Build the argparse parser from TrainConfig's fields and return the filled config."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    choices = {"device": ["auto", "cpu", "cuda", "mps"], "encoder": ["dino", DINOV2]}
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "tuple":
            p.add_argument(flag, type=float, nargs=2, default=f.default, help=f"(default: {f.default})")
        elif f.type == "bool":
            p.add_argument(flag, action="store_true", help="tiny data and few steps: a smoke run")
        else:
            typ = {"int": int, "float": float, "str": str}[f.type]
            p.add_argument(
                flag, type=typ, default=f.default, choices=choices.get(f.name), help=f"(default: {f.default})"
            )
    p.add_argument("--part", choices=PARTS, default="dino", help=PART_HELP)
    ns = vars(p.parse_args(argv))
    ns.pop("part")  # part 1 here; train.py's run() sends --part memory to memory/training.py
    cfg = TrainConfig(**ns)
    if not cfg.quick:
        return cfg
    typed = given_flags(p, argv)  # --quick shrinks only what was not typed
    return dataclasses.replace(cfg, **{k: v for k, v in QUICK.items() if k not in typed})


def save_loss_plot(hists: dict, out_dir: Path) -> None:
    """outputs/train_loss.png: DINO's loss and teacher entropy, every predictor's loss, the decoder's."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.5))
    if "dino" in hists:
        axes[0].plot(hists["dino"]["step"], hists["dino"]["loss"], label="DINO loss")
        axes[0].plot(hists["dino"]["step"], hists["dino"]["teacher_entropy"], label="teacher entropy (nats)")
        axes[0].legend()
    axes[0].set(title="stage 1: DINO", xlabel="step")
    for name, h in hists.items():
        if name.startswith("predictor/"):
            axes[1].plot(h["step"], h["loss"], label=name.split("/", 1)[1])
    axes[1].set(title="stage 2: predictor feature MSE (standardised)", xlabel="step", yscale="log")
    axes[1].legend()
    if "decoder" in hists:
        axes[2].plot(hists["decoder"]["step"], hists["decoder"]["loss"], label="decoder")
    axes[2].set(title="stage 3: pixel decoder (MSE)", xlabel="step", yscale="log")
    axes[2].legend()
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "train_loss.png", dpi=100)
    plt.close(fig)


def main(argv=None) -> None:
    """Run the stages and save one checkpoint holding every encoder, predictor and the decoder."""
    cfg = parse_args(argv)
    steps = (cfg.n_traj, cfg.dino_steps, cfg.dino_batch, cfg.pred_steps, cfg.batch_size)
    if min(steps) < 1 or cfg.decoder_steps < 1 or cfg.traj_len <= cfg.num_hist or cfg.num_hist < 1:
        raise UserError("--n-traj, --*-steps, --*batch* must be positive and --traj-len > --num-hist >= 1")
    if not 1 <= cfg.rollout_steps < cfg.traj_len or cfg.finetune_steps < 0:
        raise UserError("--rollout-steps must be at least 1 and below --traj-len, --finetune-steps >= 0")
    threads = set_threads(cfg.threads)  # first line of output: how many threads, and why
    device = pick_device(cfg.device)
    print(f"device {device}, world: the arm with nuisance")
    seed_everything(cfg.seed)
    main_net = load_dinov2() if cfg.encoder == DINOV2 else None  # fail early, before any training
    root = output_root(cfg.out)  # data/, checkpoints/ and outputs/ go under it
    data = load_trajectories(cfg.n_traj, cfg.traj_len, seed=cfg.seed, data_dir=root / "data")
    t_start = time.time()
    frames = torch.from_numpy(data["frames"].reshape(-1, 64, 64, 3))  # (M, 64, 64, 3) uint8
    hists, encoders = {}, {}
    if main_net is None:
        alt = torch.from_numpy(data["frames_alt"].reshape(-1, 64, 64, 3))  # the same poses, other nuisance
        main_net, hists["dino"] = train_dino(cfg, frames, alt, device)
    encoders["dino"] = FrozenEncoder(main_net, 384 if cfg.encoder == DINOV2 else cfg.vit_dim)
    if cfg.compare:
        torch.manual_seed(cfg.seed + 7)
        encoders["random"] = FrozenEncoder(ViT(dim=cfg.vit_dim, depth=cfg.vit_depth, heads=4), cfg.vit_dim)
        encoders["pixels"] = FrozenEncoder(PixelPatches(), 48)
    proprio, actions = torch.from_numpy(data["proprio"]), torch.from_numpy(data["actions"])
    jobs = []  # stage 2: one predictor per encoder, longest jobs first (see training.train_predictors)
    for name, enc in encoders.items():
        enc.to(device)
        z = enc.raw(data["frames"], device)  # (Ntraj, T, N, D): every frame encoded once
        enc.fit_stats(z)
        z = (z - enc.mu.cpu()) / enc.sigma.cpu()
        jobs.append({"name": name, "z": z, "causal": True, "finetune": True})
        if name == "dino":
            dino_z = z
    if cfg.compare:  # the ablation changes one thing, the mask: compared teacher-forced with teacher-forced
        jobs.append({"name": "dino/nomask", "z": dino_z, "causal": False, "finetune": False})
    workers = 1 if cfg.quick else threads  # a smoke run is shorter than starting a second interpreter
    trained = train_predictors(cfg, jobs, proprio, actions, device, workers)
    predictors = {}
    for name, (state, hist, teacher_forced) in trained.items():
        predictors[name], hists[f"predictor/{name}"] = state, hist
        if name == "dino" and cfg.compare:
            predictors["dino/tf"] = teacher_forced  # the main predictor before its rollout fine-tune
    decoder, hists["decoder"] = train_decoder(cfg, dino_z.flatten(0, 1), frames, device)
    seconds = time.time() - t_start
    states = {}
    for name, enc in encoders.items():  # DINOv2's weights stay in the torch.hub cache: keep only the stats
        states[name] = (
            {"mu": enc.mu, "sigma": enc.sigma}
            if name == "dino" and cfg.encoder == DINOV2
            else enc.state_dict()
        )
    ckpt = {
        "model": "dino-wm",
        "world": WORLD,
        "config": dataclasses.asdict(cfg),
        "encoders": states,
        "predictors": predictors,
        "decoder": decoder.state_dict(),
        "train_seconds": seconds,
        "seconds": {k: h["seconds"] for k, h in hists.items()},
    }
    path = root / "checkpoints" / "dino_wm.pt"
    save_checkpoint(ckpt, path)
    save_loss_plot(hists, root / "outputs")
    save_world_picture(data["frames"], data["frames_alt"], root / "outputs" / "world.png")
    finals = ", ".join(f"{k} {h['loss'][-1]:.4f}" for k, h in hists.items())
    print(f"trained in {seconds:.0f} s; final losses: {finals}; saved {path}")
    again = [*(["--quick"] if cfg.quick else []), *(["--out", cfg.out] if cfg.out else [])]
    print("next: " + command("validate.py", *again))  # the same --quick and --out


def run(argv=None) -> None:
    """``--part memory``: part 2 (memory/training.py, with its own flags); otherwise part 1's ``main``."""
    part, rest = split_part(argv)
    if part == "memory":
        from memory.training import main as memory_main

        memory_main(rest)
    else:
        main(argv)


if __name__ == "__main__":
    exit_on_user_error(run)
