"""Train chapter 4: where do the actions come from when the video has no labels?

    uv run train.py            # everything (see the README for the minutes it takes)
    uv run train.py --quick    # a smoke run in well under a minute

Only a small fraction of the training trajectories (5 %) keep their action labels; the rest is treated as
unlabelled video. Stages:
  1. inverse dynamics models (IDM) on the labelled pairs: the dot (5 actions, classification) at a few
     label fractions, and the point mass ((dx, dy), regression); the dot IDM then pseudo-labels the rest;
  2. the overlay reader on the labelled frames of the same dot video with a controller overlay drawn on;
     it reads the action of every frame, and the overlay is masked out before modelling dynamics;
  3. the latent action model (LAM) on all dot pairs, no labels; its codes are named with 20 labelled
     pairs; and the ablation that shows collapse (VQ codebook, plain MSE, no spreading);
  4. the pay-off: the same dynamics model trained on true labels, IDM pseudo-labels, LAM codes mapped
     to actions, overlay-read labels (on masked frames), and the collapsed ablation LAM's mapped codes.
Writes checkpoints/inverse_dynamics.pt and outputs/train_loss.png (under --out DIR if given).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import stages
import torch

from data_utils import add_overlay, label_split, load_trajectories, mask_overlay
from utils import (
    OUT_HELP,
    UserError,
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

OVERLAY_SEED_OFFSET = 7  # the overlay's jitter uses seed + 7, so it differs from the dot's own randomness


@dataclass
class TrainConfig:
    """Every training setting; each field is also a command-line flag (--field-name)."""

    n_traj: int = 1000  # training trajectories per world
    traj_len: int = 12  # frames per trajectory (11 actions)
    label_fraction: float = 0.05  # trajectories that keep their labels (the rest is "unlabelled video")
    idm_fractions: str = "0.002"  # extra label fractions for the dot IDM's accuracy-vs-labels curve
    map_labels: int = 20  # labelled pairs used to name the LAM's codes
    idm_steps: int = 120  # steps per IDM (batch 64)
    overlay_steps: int = 80
    lam_steps: int = 300  # steps of the latent action model
    lam_batch: int = 32
    ablation: int = 1  # 1: also train the LAM without the remedies (shows collapse); 0: skip
    lam_ablation_steps: int = 100  # the ablation is compared with the default LAM at the same step
    dyn_steps: int = 150  # steps per pay-off dynamics model (5 models)
    dyn_batch: int = 32
    rollout_steps: int = 1  # the dynamics models are trained on open-loop unrolls of this many steps
    batch_size: int = 64
    lr: float = 3e-3
    fg_weight: float = 20.0  # bright pixels count this many times more in the LAM and dynamics losses
    threads: int = 0  # torch threads; 0: the cores free right now (see utils.choose_threads)
    seed: int = 0
    device: str = "auto"
    out: str = ""  # the output root for data/, checkpoints/ and outputs/ ("": this chapter's folder)
    quick: bool = False


QUICK = {
    "n_traj": 40,
    "idm_steps": 8,
    "overlay_steps": 8,
    "lam_steps": 8,
    "lam_ablation_steps": 4,
    "dyn_steps": 4,
    "batch_size": 16,
}
QUICK |= {"dyn_batch": 8, "lam_batch": 8, "label_fraction": 0.1, "idm_fractions": "0.05"}


def parse_args(argv=None) -> TrainConfig:
    """Build the argparse parser from TrainConfig's fields and return the filled config."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            p.add_argument(flag, action="store_true", help="tiny data and few steps: a smoke run")
        else:
            typ = {"int": int, "float": float, "str": str}[f.type]
            choices = ["auto", "cpu", "cuda", "mps"] if f.name == "device" else None
            helps = OUT_HELP if f.name == "out" else f"(default: {f.default})"
            p.add_argument(flag, type=typ, default=f.default, choices=choices, help=helps)
    cfg = TrainConfig(**vars(p.parse_args(argv)))
    if cfg.quick:  # the smoke run's sizes, except where a flag was typed
        given = given_flags(p, argv)
        cfg = dataclasses.replace(cfg, **{k: v for k, v in QUICK.items() if k not in given})
    steps = (
        cfg.idm_steps,
        cfg.overlay_steps,
        cfg.lam_steps,
        cfg.dyn_steps,
        cfg.batch_size,
        cfg.dyn_batch,
        cfg.lam_batch,
    )
    if min(steps) < 1 or cfg.n_traj < 2 or cfg.map_labels < 1:
        raise UserError("--*-steps, --batch-size, --dyn-batch, --map-labels must be >= 1 and --n-traj >= 2")
    if cfg.traj_len < cfg.rollout_steps + 1 or cfg.rollout_steps < 1:
        raise UserError("--rollout-steps must be >= 1 and --traj-len must exceed it")
    try:
        fractions = [float(f) for f in cfg.idm_fractions.split(",") if f]
    except ValueError:
        raise UserError(
            f"--idm-fractions must be comma-separated numbers, got {cfg.idm_fractions!r}"
        ) from None
    if not all(0 < f <= 1 for f in [*fractions, cfg.label_fraction]):
        raise UserError("label fractions must be in (0, 1]")
    return cfg


def fractions(cfg: TrainConfig) -> list[float]:
    """All dot IDM label fractions, the main one included, without repeats, small to large."""
    extra = [float(f) for f in cfg.idm_fractions.split(",") if f]
    return sorted(set(extra) | {cfg.label_fraction})


def with_true_labels(labels: torch.Tensor, actions: torch.Tensor, labelled: np.ndarray) -> torch.Tensor:
    """Inferred labels (N, T-1), but the labelled trajectories keep their true actions (as VPT does)."""
    out = labels.clone()
    out[labelled] = actions[labelled]
    return out


def save_loss_plot(hists: dict, out_dir) -> None:
    """out_dir/train_loss.png: every stage's loss against step, and the LAM's code perplexity."""
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.5))
    groups = {"IDM / overlay (cross-entropy, MSE)": ("idm", "overlay"), "LAM (weighted MSE)": ("lam",)}
    groups["pay-off dynamics (weighted MSE)"] = ("dyn",)
    for ax, (title, prefixes) in zip(axes, groups.items(), strict=False):
        for name, h in hists.items():
            if name.startswith(prefixes):
                ax.plot(h["step"], h["loss"], label=name)
        ax.set(title=title, xlabel="step", yscale="log")
        ax.legend(fontsize=7)
    for name, h in hists.items():
        if "perplexity" in h:
            axes[3].plot(h["step"], h["perplexity"], label=name)
    axes[3].set(title="LAM code perplexity (1 = collapse)", xlabel="step")
    axes[3].legend(fontsize=7)
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "train_loss.png", dpi=100)
    plt.close(fig)


def stage_idm(cfg: TrainConfig, frames, actions, wall: dict, labelled: np.ndarray, device) -> tuple:
    """Stage 1, inverse dynamics (VPT): a few labelled pairs -> an IDM -> labels for every pair.

    Trains the dot's IDM (frames (N, T, 3, 64, 64) uint8, actions (N, T-1)) on each label fraction and
    the point mass's on ``labelled``. Returns (idm_labels (N, T-1) int64 from the main fraction's IDM,
    hists, states).
    """
    hists, states = {}, {}
    for frac in fractions(cfg):
        few = label_split(cfg.n_traj, frac, cfg.seed)
        idm, hists[f"idm dot {frac:g}"] = stages.train_idm("discrete", frames, actions, few, cfg, device)
        states[f"idm_dot@{frac:g}"] = idm.state_dict()
        if frac == cfg.label_fraction:
            main_idm = idm
    wall_f, wall_a = stages.to_tensor(wall["frames"]), torch.from_numpy(wall["actions"])
    idm_wall, hists["idm wall"] = stages.train_idm("continuous", wall_f, wall_a, labelled, cfg, device)
    states["idm_wall"] = idm_wall.state_dict()
    return stages.pseudo_label(main_idm, frames, device), hists, states


def stage_overlay(cfg: TrainConfig, dot: dict, labelled: np.ndarray, device) -> tuple:
    """Stage 2, the controller overlay: read the action off the frame, then mask the overlay out.

    Returns (read (N, T-1) int64: the action read at frame t, masked (N, T, 3, 64, 64) uint8 frames
    without the overlay, hists, states).
    """
    hud, shown = add_overlay(dot["frames"], dot["actions"], seed=cfg.seed + OVERLAY_SEED_OFFSET)
    hud_t, shown_t = stages.to_tensor(hud), torch.from_numpy(shown)
    reader, hist = stages.train_overlay(hud_t, shown_t, labelled, cfg, device)
    read = stages.read_overlay(reader, hud_t, device)[:, :-1]  # frame t shows a_t: (N, T-1)
    masked = stages.to_tensor(mask_overlay(hud))  # what the dynamics model may see
    return read, masked, {"overlay reader": hist}, {"overlay": reader.state_dict()}


def stage_lam(cfg: TrainConfig, frames: torch.Tensor, actions: torch.Tensor, labelled, device) -> tuple:
    """Stage 3, latent actions (Genie): no labels at all; ``cfg.map_labels`` labelled pairs name the codes.

    Trains the default LAM (and the collapse ablation with ``cfg.ablation``). Returns (labels: {name:
    (N, T-1) int64 named codes}, the default LAM's code -> action mapping (K,), hists, states).
    """
    lam, hist = stages.train_lam(frames, cfg, device, "fsq")
    hists, states, models = {"lam fsq (default)": hist}, {"lam": lam.state_dict()}, {"lam": lam}
    if cfg.ablation:
        naive, hists["lam vq, plain MSE (ablation)"] = stages.train_lam(
            frames, cfg, device, "vq", fg_weight=1.0, spread=False, steps=cfg.lam_ablation_steps
        )
        states["lam_ablation"], models["lam_ablation"] = naive.state_dict(), naive
    rng = np.random.default_rng(cfg.seed + 5)
    pick = rng.choice(len(labelled) * (cfg.traj_len - 1), size=cfg.map_labels, replace=False)
    traj, step = labelled[pick // (cfg.traj_len - 1)], pick % (cfg.traj_len - 1)  # the labelled pairs
    labels, mappings = {}, {}
    for name, model in models.items():
        codes = stages.lam_codes(model, frames, device)  # (N, T-1)
        mappings[name] = stages.map_codes(codes[traj, step], actions[traj, step], model.n_codes)  # (K,)
        labels[name] = mappings[name][codes]  # (N, T-1)
    return labels, mappings["lam"], hists, states


def stage_payoff(cfg: TrainConfig, sources: dict, device) -> tuple[dict, dict]:
    """Stage 4, the pay-off: the same dynamics model trained on each source of labels, same steps.

    sources: {name: (frames (N, T, 3, 64, 64) uint8, actions (N, T-1) int64)}. Returns (hists, states).
    """
    hists, states = {}, {}
    for name, (f, a) in sources.items():
        model, hists[f"dyn {name}"] = stages.train_dynamics(f, a, cfg, device, name)
        states[f"dyn_{name}"] = model.state_dict()
    return hists, states


def main(argv=None) -> None:
    """Run the four stages and save one checkpoint holding every model and the inferred labels' quality."""
    cfg = parse_args(argv)
    set_threads(cfg.threads)  # first line of output: how many threads, and why
    device = pick_device(cfg.device)
    print(f"device {device}")
    seed_everything(cfg.seed)
    root = output_root(cfg.out)
    dot = load_trajectories("dot", cfg.n_traj, cfg.traj_len, seed=cfg.seed, data_dir=root / "data")
    wall = load_trajectories("wall", cfg.n_traj, cfg.traj_len, seed=cfg.seed, data_dir=root / "data")
    t_start = time.time()
    frames, actions = stages.to_tensor(dot["frames"]), torch.from_numpy(dot["actions"])  # (N, T, 3, 64, 64)
    labelled = label_split(cfg.n_traj, cfg.label_fraction, cfg.seed)
    unlabelled = np.setdiff1d(np.arange(cfg.n_traj), labelled)

    idm_labels, hists, states = stage_idm(cfg, frames, actions, wall, labelled, device)
    read, masked, h, s = stage_overlay(cfg, dot, labelled, device)
    hists, states = hists | h, states | s
    lam_labels, lam_mapping, h, s = stage_lam(cfg, frames, actions, labelled, device)
    hists, states = hists | h, states | s
    sources = {
        "true": (frames, actions),
        "idm": (frames, with_true_labels(idm_labels, actions, labelled)),
        "lam": (frames, lam_labels["lam"]),  # only the map_labels labelled pairs were used
        "overlay": (masked, with_true_labels(read, actions, labelled)),
    } | ({"lam_ablation": (frames, lam_labels["lam_ablation"])} if cfg.ablation else {})
    h, s = stage_payoff(cfg, sources, device)
    hists, states = hists | h, states | s
    seconds = time.time() - t_start

    def right(labels):  # accuracy of inferred labels on the pairs whose labels we pretended to lose
        return (labels[unlabelled] == actions[unlabelled]).float().mean().item()

    info = {"labelled_trajectories": len(labelled), "idm_pseudo_label_acc_unlabelled": right(idm_labels)}
    info["overlay_read_acc_unlabelled"] = right(read)
    info |= {f"{name}_mapped_acc_unlabelled": right(labels) for name, labels in lam_labels.items()}
    ckpt = {
        "model": "inverse-dynamics",
        "config": dataclasses.asdict(cfg)
        | {"fractions": fractions(cfg), "trained": list(states), "sources": list(sources)},
        "states": states,
        "lam_mapping": lam_mapping,
        "info": info,
        "train_seconds": seconds,
        "seconds": {k: h["seconds"] for k, h in hists.items()},
    }
    path = root / "checkpoints" / "inverse_dynamics.pt"
    save_checkpoint(ckpt, path)
    save_loss_plot(hists, root / "outputs")
    labels = ", ".join(f"{k} {v:.3f}" for k, v in info.items() if k.endswith("unlabelled"))
    finals = ", ".join(f"{k} {h['loss'][-1]:.4f}" for k, h in hists.items())
    print(f"label quality on the unlabelled trajectories: {labels}")
    print(f"trained in {seconds:.0f} s; final losses: {finals}; saved {path}")
    print(f"next: {command('validate.py', *(['--quick'] if cfg.quick else []), *out_args(cfg.out))}")


if __name__ == "__main__":
    exit_on_user_error(main)
