"""Evaluate chapter 4 on held-out trajectories (a seed never seen in training).

    uv run validate.py
    uv run validate.py --checkpoint checkpoints/inverse_dynamics.pt --quick

Measures the inverse dynamics models (accuracy against the number of labels, the point mass's error), the
latent action model (code <-> action table, naming the codes from 20 labelled pairs, Genie's delta-t-PSNR,
code perplexity, and the same for each ablation), the overlay reader, and the pay-off: 10-step dreams of
the point mass's dynamics models trained on true pushes, IDM pseudo-labels, named latent actions and no
action. Writes outputs/metrics.json, outputs/lam_confusion.png, outputs/pairs.png and
outputs/payoff_dreams.png, under --out DIR if given (its checkpoints/ then holds the default checkpoint).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass

import numpy as np
import stages
import torch
from evaluate import dream_errors, lam_scores, load_models, mapping_accuracy
from pictures import save_confusion, save_dreams, save_pairs
from tqdm import tqdm

from data_utils import add_overlay, load_trajectories
from models import InverseDynamics, perplexity
from utils import (
    OUT_HELP,
    UserError,
    exit_on_user_error,
    given_flags,
    load_checkpoint,
    output_root,
    pick_device,
    seed_everything,
    set_threads,
)

HORIZON, HELDOUT_SEED_OFFSET, OVERLAY_SEED_OFFSET = 10, 10_000, 7
TARGETS = {
    "idm/dot_acc": (">=", 0.98),
    "lam/map_acc_20_labels": (">=", 0.90),
    "lam/delta_tpsnr_db": (">=", 3.0),
    "overlay/read_acc": (">=", 0.99),
    "payoff/idm_over_true_10step": ("<=", 1.10),
    "payoff/lam_minus_true_10step_px": (">", 0.0),  # the ranking: true labels < latent actions < none
    "payoff/none_minus_lam_10step_px": (">", 0.0),
}
PAYOFF = {  # source -> what its row says
    "true": "true pushes",
    "true_labelled_only": "true pushes, labelled 5 % only",
    "idm": "IDM pseudo-labels",
    "lam": "latent actions, named",
    "none": "no action",
}


@dataclass
class ValConfig:
    """Validation settings (each is a flag)."""

    checkpoint: str = ""  # "": the one train.py writes, <out>/checkpoints/inverse_dynamics.pt
    n_traj: int = 200  # held-out trajectories per world
    draws: int = 100  # random draws of the 20 labelled pairs that name the LAM's codes
    threads: int = 0  # torch threads; 0: the cores free right now
    seed: int = 0
    device: str = "auto"
    out: str = ""  # the output root for data/, checkpoints/ and outputs/ ("": this chapter's folder)
    quick: bool = False


def parse_args(argv=None) -> ValConfig:
    """Command-line flags -> ValConfig."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--checkpoint",
        default="",
        help="written by train.py (default: checkpoints/inverse_dynamics.pt under --out)",
    )
    p.add_argument("--n-traj", type=int, default=200, help="held-out trajectories per world (default: 200)")
    p.add_argument("--draws", type=int, default=100, help="draws of the 20 labelled pairs (default: 100)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: 0, the cores free now)")
    p.add_argument("--seed", type=int, default=0, help="held-out data uses seed + 10000 (default: 0)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--quick", action="store_true", help="20 trajectories per world, 10 draws (unless given)")
    p.add_argument("--out", default="", help=OUT_HELP)
    cfg = ValConfig(**vars(p.parse_args(argv)))
    cfg.checkpoint = cfg.checkpoint or str(output_root(cfg.out) / "checkpoints" / "inverse_dynamics.pt")
    if cfg.quick:  # the smoke run's sizes, except where a flag was typed
        given = given_flags(p, argv)
        cfg.n_traj = cfg.n_traj if "n_traj" in given else 20
        cfg.draws = cfg.draws if "draws" in given else 10
    if cfg.n_traj < 2 or cfg.draws < 1:
        raise UserError("--n-traj must be >= 2 and --draws >= 1")  # one line, exit code 2
    return cfg


def evaluate_idms(models, ckpt, dot, wall, device) -> tuple[dict, dict]:
    """IDM accuracy on held-out dot pairs per label fraction; the point mass's (dx, dy) error."""
    cfg, m, b = ckpt["config"], {}, {}
    truth = torch.from_numpy(dot["actions"]).flatten()  # (B,)
    for frac in cfg["fractions"]:
        pred = stages.over_pairs(models[f"idm_dot@{frac:g}"].predict, dot["f"], device)
        m[f"idm/dot_acc@{frac:g}"] = (pred == truth).float().mean().item()
        m[f"idm/labelled_pairs@{frac:g}"] = max(1, round(frac * cfg["n_traj"])) * (cfg["traj_len"] - 1)
    m["idm/dot_acc"] = m[f"idm/dot_acc@{cfg['label_fraction']:g}"]
    torch.manual_seed(0)
    untrained = InverseDynamics("discrete").to(device).eval()
    b["idm/dot_acc/untrained"] = (
        (stages.over_pairs(untrained.predict, dot["f"], device) == truth).float().mean().item()
    )
    b["idm/dot_acc/majority_class"] = torch.bincount(truth).max().item() / len(truth)
    b["idm/dot_acc/chance"] = 0.2
    true_a = torch.from_numpy(wall["actions"]).reshape(-1, 2)  # (B, 2)
    pred_a = stages.over_pairs(models["idm_wall"].predict, wall["f"], device)
    moved = np.diff(wall["positions"], axis=1).reshape(-1, 2)  # (B, 2) true displacement in px
    free = torch.from_numpy(np.abs(moved - true_a.numpy() * 3.2).max(1) < 0.05)  # not blocked by a wall
    m["idm/wall_mae"] = (pred_a - true_a).abs().mean().item()
    m["idm/wall_mae_free_moves"] = (pred_a - true_a)[free].abs().mean().item()
    b["idm/wall_mae/predict_zero"] = true_a.abs().mean().item()
    return m, b


def evaluate_lam(models, ckpt, dot, device, cfg: ValConfig) -> tuple[dict, dict, dict]:
    """The LAM and its ablations: perplexity, delta-t-PSNR, code purity, naming the codes from 20 pairs."""
    truth = torch.from_numpy(dot["actions"]).flatten()
    m, b, extra = {}, {}, {}
    for name in ckpt["config"]["lam_variants"]:
        lam = models[name]
        s = lam_scores(lam, dot["f"], device, cfg.seed)
        accs = mapping_accuracy(
            s["codes"],
            truth,
            ckpt["config"]["map_labels"],
            cfg.draws,
            cfg.seed,
            stages.map_codes,
            lam.n_codes,
        )
        best = stages.map_codes(s["codes"], truth, lam.n_codes)  # naming with every label: the upper bound
        m[f"{name}/map_acc_20_labels"] = float(accs.mean())
        m[f"{name}/map_acc_20_labels_worst"] = float(accs.min())
        m[f"{name}/map_acc_all_labels"] = (best[s["codes"]] == truth).float().mean().item()
        m[f"{name}/delta_tpsnr_db"] = (s["psnr_inferred"] - s["psnr_random"]).mean().item()
        m[f"{name}/psnr_inferred_db"] = s["psnr_inferred"].mean().item()
        m[f"{name}/code_perplexity"] = perplexity(s["codes"], lam.n_codes)
        extra[name] = s["codes"]
    b["lam/map_acc_20_labels/chance"] = 0.2
    b["lam/code_perplexity/collapse"] = 1.0
    b["lam/delta_tpsnr_db/code_ignored"] = 0.0
    m["lam/train_mapping_acc"] = (ckpt["lam_mapping"][extra["lam"]] == truth).float().mean().item()
    return m, b, extra


def print_tables(metrics: dict, baselines: dict, sources: list) -> None:
    """The metric table (value, target, baselines), then the pay-off table."""
    print(f"\n{'metric':38s} {'value':>8s} {'target':>8s}   baseline")
    for key, value in metrics.items():
        if key.startswith("payoff/") and key not in TARGETS:
            continue
        tgt = f"{TARGETS[key][0]} {TARGETS[key][1]:g}" if key in TARGETS else ""
        bl = ", ".join(
            f"{k.rsplit('/', 1)[1]} {v:.3g}" for k, v in baselines.items() if k.rsplit("/", 1)[0] == key
        )
        if key.startswith("lam/map_acc"):
            bl = "chance 0.2"
        print(f"{key:38s} {value:8.3f} {tgt:>8s}   {bl}")
    head = (
        f"{'pay-off (point mass): dynamics on':34s} {'push MAE':>9s} {'1-step px':>10s} {'10-step px':>11s}"
    )
    print(f"\n{head} {'std':>6s}   10-step px per dynamics seed")
    for s in sources:
        one, ten = metrics[f"payoff/{s}/pos_err_1step_px"], metrics[f"payoff/{s}/pos_err_10step_px"]
        std, per = (metrics[f"payoff/{s}/pos_err_10step_px/{k}"] for k in ("dyn_seed_std", "per_dyn_seed"))
        mae = metrics.get(f"payoff/{s}/label_mae")
        print(
            f"{PAYOFF.get(s, s):34s} {'' if mae is None else f'{mae:.3f}':>9s} {one:10.3f} {ten:11.3f}",
            end="",
        )
        print(f" {std:6.3f}   {' / '.join(f'{x:.3f}' for x in per)}")
    still = baselines["payoff/pos_err_10step_px/copy_last"]
    print(f"{'baseline: copy_last (never moves)':34s} {'':9s} {'':10s} {still:11.3f}")
    ratios = " / ".join(f"{r:.3f}" for r in metrics["payoff/idm_over_true_10step/per_dyn_seed"])
    print(f"IDM / true with each dynamics seed alone: {ratios} (the target is on the ratio of the means)")


def evaluate_payoff(models, ckpt, wall, device) -> tuple[dict, dict, dict]:
    """The pay-off: each source's dynamics model dreams 10 steps from a true start under the true pushes.

    The latent-action model is told the nearest of its named codes (all it knows), the no-action model
    nothing. Each source has one model per dynamics seed (same data and labels); its error is their mean,
    and idm_over_true is the ratio of the means. Also the labels' own error on the held-out pairs.
    Returns (metrics, baselines, {source: dreamt positions (N, S, 2)} for the picture).
    """
    m, b, dreams = {}, {}, {}
    acts = torch.from_numpy(wall["actions"])  # (N, S, 2)
    names = ckpt["wall_lam_names"]  # (K, 2)
    told = {"lam": stages.snap(acts, names), "none": acts[..., :0]}
    codes = stages.lam_codes(models["lam_wall"], wall["f"], device)  # (N, S)
    label_mae = {"true": 0.0, "true_labelled_only": 0.0}
    idm = stages.over_pairs(models["idm_wall"].predict, wall["f"], device)  # (N*S, 2)
    label_mae["idm"] = (idm - acts.reshape(-1, 2)).abs().mean().item()
    label_mae["lam"] = (names[codes] - acts).abs().mean().item()
    seeds = ckpt["config"]["dyn_seeds"]
    for s in PAYOFF:  # one dynamics model per dynamics seed; each source's error is their mean
        errs = []  # (seeds, S)
        for k in range(seeds):
            e, dream = dream_errors(models[f"dyn_{s}@{k}"], wall["positions"], told.get(s, acts), device)
            errs.append(e)
            dreams.setdefault(s, dream)  # the picture shows the first seed's dreams
        ten_k = [float(e[-1]) for e in errs]
        m[f"payoff/{s}/pos_err_1step_px"] = float(np.mean([e[0] for e in errs]))
        m[f"payoff/{s}/pos_err_10step_px"] = float(np.mean(ten_k))
        m[f"payoff/{s}/pos_err_10step_px/dyn_seed_std"] = float(np.std(ten_k))  # the spread, no target
        m[f"payoff/{s}/pos_err_10step_px/per_dyn_seed"] = ten_k
        if s in label_mae:
            m[f"payoff/{s}/label_mae"] = float(label_mae[s])
    ten = {s: m[f"payoff/{s}/pos_err_10step_px"] for s in dreams}
    per = {s: np.array(m[f"payoff/{s}/pos_err_10step_px/per_dyn_seed"]) for s in dreams}
    ratio_k = per["idm"] / np.maximum(per["true"], 1e-6)  # the ratio with each dynamics seed alone
    m["payoff/idm_over_true_10step/per_dyn_seed"] = [float(r) for r in ratio_k]
    m["payoff/idm_over_true_10step"] = ten["idm"] / max(ten["true"], 1e-6)
    m["payoff/lam_minus_true_10step_px"] = ten["lam"] - ten["true"]
    m["payoff/none_minus_lam_10step_px"] = ten["none"] - ten["lam"]
    b["payoff/idm_over_true_10step/none_over_true"] = ten["none"] / max(ten["true"], 1e-6)
    b["payoff/lam_minus_true_10step_px/none_minus_true"] = ten["none"] - ten["true"]  # the whole range
    b["payoff/none_minus_lam_10step_px/none_minus_true"] = ten["none"] - ten["true"]
    still = np.linalg.norm(wall["positions"][:, 1:] - wall["positions"][:, :1], axis=-1).mean(0)  # (S,)
    b["payoff/pos_err_10step_px/copy_last"] = float(still[-1])
    return m, b, dreams


def main(argv=None) -> None:
    """Load the checkpoint, evaluate on held-out data, print the tables, save metrics and pictures."""
    cfg = parse_args(argv)
    set_threads(cfg.threads)
    t0 = time.time()
    device = pick_device(cfg.device)
    seed_everything(cfg.seed)
    ckpt = load_checkpoint(cfg.checkpoint, "inverse-dynamics", cfg.out)
    models = load_models(ckpt, device)
    seed = cfg.seed + HELDOUT_SEED_OFFSET
    root = output_root(cfg.out)
    out_dir = root / "outputs"
    dot = load_trajectories("dot", cfg.n_traj, HORIZON + 1, seed=seed, quiet=True, data_dir=root / "data")
    wall = load_trajectories("wall", cfg.n_traj, HORIZON + 1, seed=seed, quiet=True, data_dir=root / "data")
    dot["f"] = stages.to_tensor(dot["frames"])
    wall["f"] = stages.to_tensor(wall["frames"])
    seeds = ckpt["config"].get("dyn_seeds", 0)
    if (
        not seeds
        or not all(f"dyn_{s}@{k}" in models for s in PAYOFF for k in range(seeds))
        or "wall_lam_names" not in ckpt
    ):
        raise UserError("the checkpoint lacks the pay-off's dynamics models: re-run train.py")
    bar = tqdm(total=5, desc="evaluating: IDMs", leave=False)  # 5 stages: the slow ones on 200 trajectories
    metrics, baselines = evaluate_idms(models, ckpt, dot, wall, device)
    bar.update()
    bar.set_description(f"evaluating: the LAMs ({cfg.draws} draws of 20 labels)")
    m, b, codes = evaluate_lam(models, ckpt, dot, device, cfg)
    bar.update()
    bar.set_description("evaluating: the overlay reader")
    metrics |= m
    baselines |= b
    hud, shown = add_overlay(dot["frames"], dot["actions"], seed=seed + OVERLAY_SEED_OFFSET)
    read = stages.read_overlay(models["overlay"], stages.to_tensor(hud), device)  # (N, T)
    metrics["overlay/read_acc"] = (read == torch.from_numpy(shown)).float().mean().item()
    baselines["overlay/read_acc/chance"] = 0.2
    acts = torch.from_numpy(dot["actions"])  # (N, 10)
    bar.update()
    bar.set_description("evaluating: the pay-off's dreams")
    m, b, dreams = evaluate_payoff(models, ckpt, wall, device)
    metrics |= m
    baselines |= b
    targets = {k: list(v) for k, v in TARGETS.items()}
    ok = {"<=": lambda a, t: a <= t, ">=": lambda a, t: a >= t, ">": lambda a, t: a > t}
    passed = all(ok[op](metrics[k], t) for k, (op, t) in targets.items())
    report = {
        "chapter": "4.inverse-dynamics",
        "quick": cfg.quick,
        "device": str(device),
        "train_seconds": round(float(ckpt["train_seconds"]), 1),
        "metrics": metrics,
        "baselines": baselines,
        "targets": targets,
        "passed": passed,
        "train_label_quality": ckpt["info"],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(report, indent=2))
    bar.update()
    bar.set_description("evaluating: pictures")
    save_confusion(codes, acts.flatten(), models, ckpt, out_dir)
    save_pairs(dot, models, ckpt, device, seed, out_dir)
    save_dreams(wall, dreams, PAYOFF, out_dir)
    bar.update()
    bar.close()
    print_tables(metrics, baselines, list(dreams))
    if cfg.quick:
        print("\nsmoke run (--quick): this checks the plumbing; the numbers are not the lesson's")
    print(f"\ntrain seconds {ckpt['train_seconds']:.0f}, validate seconds {time.time() - t0:.0f}; "
          f"targets {'PASSED' if passed else 'NOT met'}")  # fmt: skip
    print(
        f"wrote {out_dir / 'metrics.json'}, lam_confusion.png, pairs.png and payoff_dreams.png in {out_dir}"
    )


if __name__ == "__main__":
    exit_on_user_error(main)
