"""Train chapter 5: a small DINO encoder, then DINO-WM's feature predictor on top of it, frozen.

    uv run train.py            # everything (see README for minutes on a 2-core CPU)
    uv run train.py --quick    # a smoke run in well under a minute
    uv run train.py --encoder dinov2_vits14   # real DINOv2 through torch.hub, if its weights are reachable

Stages: (1) DINO self-distillation of a small ViT on frames of the point-mass room (student + EMA
teacher, multi-crop, centring and sharpening), then frozen; (2) a chapter-1 style conv autoencoder
(the reconstruction codec to compare with); (3) every training frame encoded once by each frozen
encoder (our DINO, the same ViT at random init, the codec), and one feature predictor per encoder,
plus one without the causal mask (the ablation); (4) a pixel decoder on the DINO features, to look.
Writes checkpoints/dino_wm.pt and outputs/train_loss.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from encoders import DINOV2, FrozenEncoder, load_dinov2
from training import train_codec, train_decoder, train_dino, train_predictor

from data_utils import WORLDS, load_trajectories
from models import ViT
from utils import (
    CKPT_DIR,
    OUT_DIR,
    UserError,
    exit_on_user_error,
    pick_device,
    save_checkpoint,
    seed_everything,
)


@dataclass
class TrainConfig:
    """Every training setting; each field is also a command-line flag (--field-name)."""

    world: str = "wall"  # the room: wall or umaze
    encoder: str = "dino"  # dino (trained here) or dinov2_vits14 (torch.hub, needs the weights)
    n_traj: int = 500  # training trajectories
    traj_len: int = 16  # kept frames per trajectory (frame skip 5)
    vit_dim: int = 64  # the DINO ViT's width (16-px patches -> 16 tokens)
    vit_depth: int = 4
    dino_steps: int = 800
    dino_batch: int = 32  # frames per DINO step; each gives 2 global and n_local local crops
    n_local: int = 0  # local crops: off, most miss the 6-px agent and cannot say what the frame holds
    patch_weight: float = 1.0  # weight of iBOT's masked-patch loss beside DINO's [CLS] loss (0 = none)
    mask_ratio: tuple = (0.1, 0.5)  # fraction of the student's patches masked for that loss
    global_scale: tuple = (0.9, 1.0)  # area of the 2 global crops (64 px), as a fraction of the frame
    local_scale: tuple = (0.2, 0.5)  # area of the local crops (32 px)
    n_prototypes: int = 256  # K: the DINO head's output size
    teacher_temp: float = 0.02  # sharpening: the teacher's temperature (the student's is 0.1)
    ema_start: float = 0.996  # the teacher's EMA momentum, cosine-scheduled to 1
    dino_lr: float = 2e-3
    codec_steps: int = 300
    codec_dim: int = 32  # D of the codec's latent cells
    num_hist: int = 3  # frames of context the predictor reads
    pred_dim: int = 64  # predictor width
    pred_depth: int = 3
    pred_steps: int = 1500  # steps per predictor (4 predictors); 600 left h5 at 0.50 of copy-last
    batch_size: int = 32  # clips of num_hist + 1 frames per step
    proprio_weight: float = 1.0  # weight of the proprio MSE beside the feature MSE
    rollout_weight: float = 1.0  # weight of an open-loop rollout loss beside teacher forcing (0 = none)
    rollout_steps: int = 3  # open-loop steps of that loss (the planner imagines 5)
    rollout_window: int = 1  # frames the predictor reads in that rollout (1: cheap, as the planner does)
    decoder_steps: int = 300
    lr: float = 2e-3
    compare: int = 1  # 1: also train the comparison encoders' predictors and the no-mask ablation
    seed: int = 0
    device: str = "auto"
    quick: bool = False


QUICK = {
    "n_traj": 24,
    "dino_steps": 6,
    "dino_batch": 8,
    "codec_steps": 6,
    "pred_steps": 6,
    "decoder_steps": 6,
}


def parse_args(argv=None) -> TrainConfig:
    """Build the argparse parser from TrainConfig's fields and return the filled config."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    choices = {"device": ["auto", "cpu", "cuda", "mps"], "world": list(WORLDS), "encoder": ["dino", DINOV2]}
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
    cfg = TrainConfig(**vars(p.parse_args(argv)))
    return dataclasses.replace(cfg, **QUICK) if cfg.quick else cfg


def save_loss_plot(hists: dict) -> None:
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
    axes[1].set(title="stage 3: predictor feature MSE (standardised)", xlabel="step", yscale="log")
    axes[1].legend()
    for name in ("codec", "decoder"):
        if name in hists:
            axes[2].plot(hists[name]["step"], hists[name]["loss"], label=name)
    axes[2].set(title="codec and decoder (weighted MSE)", xlabel="step", yscale="log")
    axes[2].legend()
    fig.tight_layout()
    OUT_DIR.mkdir(exist_ok=True)
    fig.savefig(OUT_DIR / "train_loss.png", dpi=100)
    plt.close(fig)


def main(argv=None) -> None:
    """Run the stages and save one checkpoint holding every encoder, predictor and the decoder."""
    cfg = parse_args(argv)
    steps = (cfg.n_traj, cfg.dino_steps, cfg.dino_batch, cfg.codec_steps, cfg.pred_steps, cfg.batch_size)
    if min(steps) < 1 or cfg.decoder_steps < 1 or cfg.traj_len <= cfg.num_hist or cfg.num_hist < 1:
        raise UserError("--n-traj, --*-steps, --*batch* must be positive and --traj-len > --num-hist >= 1")
    if not 1 <= cfg.rollout_steps < cfg.traj_len:
        raise UserError("--rollout-steps must be at least 1 and below --traj-len")
    device = pick_device(cfg.device)
    print(f"device {device}, torch threads {torch.get_num_threads()}, world {cfg.world}")
    seed_everything(cfg.seed)
    main_net = load_dinov2() if cfg.encoder == DINOV2 else None  # fail early, before any training
    data = load_trajectories(cfg.world, cfg.n_traj, cfg.traj_len, seed=cfg.seed)
    t_start = time.time()
    frames = torch.from_numpy(data["frames"].reshape(-1, 64, 64, 3))  # (M, 64, 64, 3) uint8
    hists, encoders = {}, {}
    if main_net is None:
        main_net, hists["dino"] = train_dino(cfg, frames, device)
    encoders["dino"] = FrozenEncoder(main_net, 384 if cfg.encoder == DINOV2 else cfg.vit_dim)
    if cfg.compare:
        torch.manual_seed(cfg.seed + 7)
        encoders["random"] = FrozenEncoder(ViT(dim=cfg.vit_dim, depth=cfg.vit_depth, heads=4), cfg.vit_dim)
        codec, hists["codec"] = train_codec(cfg, frames, device)
        encoders["codec"] = FrozenEncoder(codec, cfg.codec_dim)
    proprio, actions = torch.from_numpy(data["proprio"]), torch.from_numpy(data["actions"])
    predictors, dino_z = {}, None
    for name, enc in encoders.items():
        enc.to(device)
        z = enc.raw(data["frames"], device)  # (Ntraj, T, N, D): every frame encoded once
        enc.fit_stats(z)
        z = (z - enc.mu.cpu()) / enc.sigma.cpu()
        runs = [(name, True)] + ([("dino/nomask", False)] if name == "dino" and cfg.compare else [])
        for key, causal in runs:
            model, hists[f"predictor/{key}"] = train_predictor(cfg, z, proprio, actions, device, causal, key)
            predictors[key] = model.state_dict()
        if name == "dino":
            dino_z = z
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
        "config": dataclasses.asdict(cfg),
        "encoders": states,
        "predictors": predictors,
        "decoder": decoder.state_dict(),
        "train_seconds": seconds,
        "seconds": {k: h["seconds"] for k, h in hists.items()},
    }
    path = CKPT_DIR / "dino_wm.pt"
    save_checkpoint(ckpt, path)
    save_loss_plot(hists)
    finals = ", ".join(f"{k} {h['loss'][-1]:.4f}" for k, h in hists.items())
    print(f"trained in {seconds:.0f} s; final losses: {finals}; saved {path}")
    print("next: uv run validate.py" + (" --quick" if cfg.quick else ""))


if __name__ == "__main__":
    exit_on_user_error(main)
