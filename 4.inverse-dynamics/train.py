"""Train chapter 4: where do the actions come from when the video has no labels?

    uv run train.py            # everything (see the README for the minutes it takes)
    uv run train.py --quick    # a smoke run in well under a minute

Only a small fraction of the training trajectories (5 %) keep their action labels; the rest is treated as
unlabelled video. Stages:
  1. inverse dynamics models (IDM) on the labelled pairs: the dot (5 actions, classification) at a few
     label fractions, and the point mass ((dx, dy), regression); each then pseudo-labels the rest;
  2. the overlay reader on the labelled frames of the same dot video with a controller overlay drawn on;
     it reads the action of every frame;
  3. the latent action model (LAM) on all dot pairs, no labels; its codes are named with 20 labelled
     pairs; and three ablations, each without one of its choices (batch-norm, FSQ, the weighted loss);
  4. the pay-off, on the point mass: a LAM on its pairs (codes named with the mean push of 20 labelled
     pairs), then the same learned dynamics model of the robot's position trained on true pushes (all,
     or only the labelled 5 %), IDM pseudo-labels, named latent actions, and no action at all.
Writes checkpoints/inverse_dynamics.pt and outputs/train_loss.png (under --out DIR if given).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import stages
import torch
from pictures import save_loss_plot

from data_utils import add_overlay, label_split, load_trajectories
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
# The default LAM and the ablations, each changing one of its choices (same data, seed and steps).
LAM_VARIANTS = {
    "lam": {"quantizer": "fsq", "spread": True, "weighted": True},
    "lam_no_norm": {"quantizer": "fsq", "spread": False, "weighted": True},  # no batch-norm before FSQ
    "lam_vq": {"quantizer": "vq", "spread": True, "weighted": True},  # Genie's VQ codebook instead of FSQ
    "lam_plain_mse": {"quantizer": "fsq", "spread": True, "weighted": False},  # plain MSE
}


@dataclass
class TrainConfig:
    """Every training setting; each field is also a command-line flag (--field-name)."""

    n_traj: int = 1000  # training trajectories per world
    traj_len: int = 12  # frames per trajectory (11 actions)
    label_fraction: float = 0.05  # trajectories that keep their labels (the rest is "unlabelled video")
    idm_fractions: str = "0.002"  # extra label fractions for the dot IDM's accuracy-vs-labels curve
    map_labels: int = 20  # labelled pairs used to name the LAM's codes
    idm_steps: int = 120  # steps per dot IDM (batch 64)
    wall_idm_steps: int = 1440  # steps of the point mass's IDM (mirror flips; 120 left its labels noisy)
    overlay_steps: int = 80
    lam_steps: int = 300  # steps of the latent action model
    lam_batch: int = 32
    ablation: int = 1  # 1: also train three LAMs, each without one of the default's choices; 0: skip
    dyn_steps: int = 3000  # steps per pay-off dynamics model (5 sources x dyn_seeds, small MLPs)
    dyn_seeds: int = 3  # dynamics models per source, seeds seed, seed+1, ...: validate.py reports the mean
    dyn_batch: int = 256
    batch_size: int = 64
    lr: float = 3e-3
    fg_weight: float = 20.0  # bright pixels count this many times more in the LAM decoder's loss
    threads: int = 0  # torch threads; 0: the cores free right now (see utils.choose_threads)
    seed: int = 0
    device: str = "auto"
    out: str = ""  # the output root for data/, checkpoints/ and outputs/ ("": this chapter's folder)
    quick: bool = False


QUICK = {
    "n_traj": 40,
    "idm_steps": 8,
    "wall_idm_steps": 8,
    "overlay_steps": 8,
    "lam_steps": 8,
    "dyn_steps": 50,
    "batch_size": 16,
}
QUICK |= {"dyn_batch": 64, "lam_batch": 8, "label_fraction": 0.1, "idm_fractions": "0.05"}


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
        cfg.wall_idm_steps,
        cfg.overlay_steps,
        cfg.lam_steps,
        cfg.dyn_steps,
        cfg.batch_size,
        cfg.dyn_batch,
        cfg.lam_batch,
        cfg.dyn_seeds,
    )
    if min(steps) < 1 or cfg.n_traj < 2 or cfg.map_labels < 1:
        raise UserError(
            "--*-steps, --batch-size, --dyn-batch, --dyn-seeds, --map-labels must be >= 1 and --n-traj >= 2"
        )
    if cfg.traj_len < 2:
        raise UserError("--traj-len must be >= 2 (one frame pair)")
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


def stage_idm(cfg: TrainConfig, frames, actions, wall: dict, labelled: np.ndarray, device) -> tuple:
    """Stage 1, inverse dynamics (VPT): a few labelled pairs -> an IDM -> labels for every pair.

    Trains the dot's IDM (frames (N, T, 3, 64, 64) uint8, actions (N, T-1)) on each label fraction and
    the point mass's on ``labelled``. Returns ({"dot": (N, T-1) int64 from the main fraction's IDM,
    "wall": (N, T-1, 2) float}, hists, states).
    """
    hists, states = {}, {}
    for frac in fractions(cfg):
        few = label_split(cfg.n_traj, frac, cfg.seed)
        idm, hists[f"idm dot {frac:g}"] = stages.train_idm("discrete", frames, actions, few, cfg, device)
        states[f"idm_dot@{frac:g}"] = idm.state_dict()
        if frac == cfg.label_fraction:
            main_idm = idm
    wall_a, wall_cfg = (
        torch.from_numpy(wall["actions"]),
        dataclasses.replace(cfg, idm_steps=cfg.wall_idm_steps),
    )
    idm_wall, hists["idm wall"] = stages.train_idm(
        "continuous", wall["f"], wall_a, labelled, wall_cfg, device
    )
    states["idm_wall"] = idm_wall.state_dict()
    labels = {"dot": stages.pseudo_label(main_idm, frames, device)}
    labels["wall"] = stages.pseudo_label(idm_wall, wall["f"], device)
    return labels, hists, states


def stage_overlay(cfg: TrainConfig, dot: dict, labelled: np.ndarray, device) -> tuple:
    """Stage 2, the controller overlay: read the action off the frame.

    Returns (read (N, T-1) int64: the action read at frame t, hists, states).
    """
    hud, shown = add_overlay(dot["frames"], dot["actions"], seed=cfg.seed + OVERLAY_SEED_OFFSET)
    hud_t, shown_t = stages.to_tensor(hud), torch.from_numpy(shown)
    reader, hist = stages.train_overlay(hud_t, shown_t, labelled, cfg, device)
    read = stages.read_overlay(reader, hud_t, device)[:, :-1]  # frame t shows a_t: (N, T-1)
    return read, {"overlay reader": hist}, {"overlay": reader.state_dict()}


def naming_pairs(cfg: TrainConfig, labelled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``cfg.map_labels`` labelled pairs that name the latent actions: (trajectory, t) indices (M,)."""
    rng = np.random.default_rng(cfg.seed + 5)
    pick = rng.choice(len(labelled) * (cfg.traj_len - 1), size=cfg.map_labels, replace=False)
    return labelled[pick // (cfg.traj_len - 1)], pick % (cfg.traj_len - 1)


def stage_lam(cfg: TrainConfig, frames: torch.Tensor, actions: torch.Tensor, labelled, device) -> tuple:
    """Stage 3, latent actions (Genie): no labels at all; ``cfg.map_labels`` labelled pairs name the codes.

    Trains the default LAM and, with ``cfg.ablation``, one LAM per row of LAM_VARIANTS (each changes one
    choice). Returns (labels: {name: (N, T-1) int64 named codes}, {name: mapping (K,)}, hists, states).
    """
    traj, step = naming_pairs(cfg, labelled)
    labels, mappings, hists, states = {}, {}, {}, {}
    for name, v in LAM_VARIANTS.items() if cfg.ablation else [("lam", LAM_VARIANTS["lam"])]:
        w = cfg.fg_weight if v["weighted"] else 1.0
        model, hists[name] = stages.train_lam(frames, cfg, device, v["quantizer"], w, v["spread"])
        states[name] = model.state_dict()
        codes = stages.lam_codes(model, frames, device)  # (N, T-1)
        mappings[name] = stages.map_codes(codes[traj, step], actions[traj, step], model.n_codes)  # (K,)
        labels[name] = mappings[name][codes]  # (N, T-1)
    return labels, mappings, hists, states


def stage_payoff(cfg: TrainConfig, wall: dict, idm_labels: torch.Tensor, labelled, device) -> tuple:
    """Stage 4, the pay-off on the point mass: does the source of the labels matter to a world model?

    A LAM learns latent actions from the point mass's pairs (no labels; no torus shift: the room has
    walls), and 20 labelled pairs name each code with their mean push. Then the same dynamics model of
    the robot's position, same seeds and steps, is trained on each source of pushes, once per dynamics
    seed (cfg.seed + k, k < cfg.dyn_seeds): one model's seed moves its error as much as the labels do.
    idm_labels: (N, T-1, 2). Returns (the codes' names (K, 2), hists, states: ``dyn_<source>@<k>``).
    """
    actions = torch.from_numpy(wall["actions"])  # (N, T-1, 2)
    lam, hist = stages.train_lam(wall["f"], cfg, device, shift=False)
    hists, states = {"lam wall": hist}, {"lam_wall": lam.state_dict()}
    codes = stages.lam_codes(lam, wall["f"], device)  # (N, T-1)
    traj, step = naming_pairs(cfg, labelled)
    names = stages.name_codes(codes[traj, step], actions[traj, step], lam.n_codes)  # (K, 2)
    every = np.arange(cfg.n_traj)
    sources = {  # name: (trajectories it learns from, pushes (N, T-1, A))
        "true": (every, actions),
        "true_labelled_only": (labelled, actions),  # only the 5 % that kept their labels
        "idm": (every, with_true_labels(idm_labels, actions, labelled)),
        "lam": (every, names[codes]),  # only the map_labels labelled pairs were used
        "none": (every, actions[..., :0]),  # A = 0: the model is told nothing
    }
    for k in range(cfg.dyn_seeds):  # the same data and labels; only the dynamics model's seed changes
        c = dataclasses.replace(cfg, seed=cfg.seed + k)
        for name, (trajs, acts) in sources.items():
            model, hists[f"dyn {name}@{k}"] = stages.train_state_dynamics(
                wall["positions"], acts, trajs, c, device, f"{name}, seed {c.seed}"
            )
            states[f"dyn_{name}@{k}"] = model.state_dict()
    return names, hists, states


def label_quality(dot, wall, labels: dict, labelled: np.ndarray) -> dict:
    """How good each source's labels are on the trajectories whose labels we pretended to lose.

    labels: {name: (N, T-1) int64 dot labels or (N, T-1, 2) float point-mass pushes, ``wall_`` prefixed}.
    Returns {name: accuracy (dot) or mean absolute error (point mass)} and the number of labelled ones.
    """
    rest = np.setdiff1d(np.arange(len(dot["actions"])), labelled)
    info = {"labelled_trajectories": len(labelled)}
    for name, lab in labels.items():
        if name.startswith("wall_"):
            err = (lab[rest] - torch.from_numpy(wall["actions"][rest])).abs().mean().item()
            info[f"{name}_mae_unlabelled"] = err
        else:
            info[f"{name}_acc_unlabelled"] = (
                (lab[rest] == torch.from_numpy(dot["actions"][rest])).float().mean().item()
            )
    return info


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
    wall["f"] = stages.to_tensor(wall["frames"])
    labelled = label_split(cfg.n_traj, cfg.label_fraction, cfg.seed)

    idm_labels, hists, states = stage_idm(cfg, frames, actions, wall, labelled, device)
    read, h, s = stage_overlay(cfg, dot, labelled, device)
    hists, states = hists | h, states | s
    lam_labels, mappings, h, s = stage_lam(cfg, frames, actions, labelled, device)
    hists, states = hists | h, states | s
    names, h, s = stage_payoff(cfg, wall, idm_labels["wall"], labelled, device)
    hists, states = hists | h, states | s
    seconds = time.time() - t_start

    quality = {"idm_pseudo_label": idm_labels["dot"], "overlay_read": read}
    quality |= {f"{k}_mapped": v for k, v in lam_labels.items()}
    quality["wall_idm_pseudo_label"] = idm_labels["wall"]
    info = label_quality(dot, wall, quality, labelled)
    ckpt = {
        "model": "inverse-dynamics",
        "config": dataclasses.asdict(cfg)
        | {"fractions": fractions(cfg), "trained": list(states), "lam_variants": list(mappings)},
        "states": states,
        "lam_mapping": mappings["lam"],
        "wall_lam_names": names,
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
