"""Evaluate chapter 4 on held-out trajectories (a seed never seen in training).

    uv run validate.py
    uv run validate.py --checkpoint checkpoints/inverse_dynamics.pt --quick

Measures the inverse dynamics models (accuracy against the number of labels, the point mass's error), the
latent action model (code <-> action table, naming the codes from 20 labelled pairs, Genie's delta-t-PSNR,
code perplexity, and the same for the collapse ablation), the overlay reader, and the pay-off: 10-step
rollouts of the dynamics models trained on true, IDM, LAM and overlay labels. Writes outputs/metrics.json,
outputs/lam_confusion.png, outputs/pairs.png and outputs/payoff_rollouts.png, under --out DIR if given (its
checkpoints/ then holds the default checkpoint).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass

import numpy as np
import stages
import torch
from evaluate import lam_scores, load_models, mapping_accuracy, rollout_errors
from pictures import save_confusion, save_pairs, save_rollouts
from tqdm import tqdm

from data_utils import add_overlay, load_trajectories, position_error
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
    """The LAM and its ablation: perplexity, delta-t-PSNR, code purity, naming the codes from 20 pairs."""
    truth = torch.from_numpy(dot["actions"]).flatten()
    m, b, extra = {}, {}, {}
    for name, key in (("lam", "lam"), ("lam_ablation", "lam_ablation")):
        if key not in models:
            continue
        lam = models[key]
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
        if key.startswith("payoff/") and key != "payoff/idm_over_true_10step":
            continue
        tgt = f"{TARGETS[key][0]} {TARGETS[key][1]:g}" if key in TARGETS else ""
        bl = ", ".join(
            f"{k.rsplit('/', 1)[1]} {v:.3g}" for k, v in baselines.items() if k.rsplit("/", 1)[0] == key
        )
        if key.startswith("lam/map_acc"):
            bl = "chance 0.2"
        print(f"{key:38s} {value:8.3f} {tgt:>8s}   {bl}")
    print(f"\n{'pay-off: dynamics trained on':30s} {'1-step px':>10s} {'10-step px':>11s}")
    for s in sources:
        one, ten = metrics[f"payoff/{s}/pos_err_1step_px"], metrics[f"payoff/{s}/pos_err_10step_px"]
        print(f"{s + ' labels':30s} {one:10.3f} {ten:11.3f}")
    for name in ("copy_last", "shuffled_actions", "erased"):
        print(f"{'baseline: ' + name:30s} {'':10s} {baselines[f'payoff/pos_err_10step_px/{name}']:11.3f}")


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
    dot["f"], wall["f"] = stages.to_tensor(dot["frames"]), stages.to_tensor(wall["frames"])
    sources = ckpt["config"].get("sources", [])  # true, idm, lam, overlay (and lam_ablation)
    if not {"true", "idm"} <= set(sources) or not all(f"dyn_{s}" in models for s in sources):
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
    bar.set_description("evaluating: pay-off rollouts")
    errs = {s: rollout_errors(models[f"dyn_{s}"], dot["f"], acts, dot["positions"], device) for s in sources}
    for s, e in errs.items():
        metrics[f"payoff/{s}/pos_err_1step_px"], metrics[f"payoff/{s}/pos_err_10step_px"] = (
            float(e[0]),
            float(e[-1]),
        )
    metrics["payoff/idm_over_true_10step"] = float(errs["idm"][-1] / max(errs["true"][-1], 1e-6))
    shuffled = acts[torch.from_numpy(np.random.default_rng(cfg.seed).permutation(len(acts)))]
    shuf = rollout_errors(models["dyn_true"], dot["f"], shuffled, dot["positions"], device)
    still = np.linalg.norm(
        ((dot["positions"][:, 1:] - dot["positions"][:, :1] + 32) % 64) - 32, axis=-1
    ).mean(0)
    baselines["payoff/pos_err_10step_px/copy_last"] = float(still[-1])
    baselines["payoff/pos_err_10step_px/shuffled_actions"] = float(shuf[-1])
    blank = np.zeros_like(dot["frames"][:, -1])  # a dream that erased the dot: the tracker's fallback
    baselines["payoff/pos_err_10step_px/erased"] = float(
        position_error(blank, dot["positions"][:, -1], "dot").mean()
    )
    targets = {k: list(v) for k, v in TARGETS.items()}
    ok = {"<=": lambda a, t: a <= t, ">=": lambda a, t: a >= t}
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
    save_rollouts(dot, models, sources, device, out_dir)
    bar.update()
    bar.close()
    print_tables(metrics, baselines, sources)
    if cfg.quick:
        print("\nsmoke run (--quick): this checks the plumbing; the numbers are not the lesson's")
    print(f"\ntrain seconds {ckpt['train_seconds']:.0f}, validate seconds {time.time() - t0:.0f}; "
          f"targets {'PASSED' if passed else 'NOT met'}")  # fmt: skip
    print(
        f"wrote {out_dir / 'metrics.json'}, lam_confusion.png, pairs.png and payoff_rollouts.png in {out_dir}"
    )


if __name__ == "__main__":
    exit_on_user_error(main)
