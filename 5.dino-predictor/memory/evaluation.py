"""`uv run validate.py --part memory`: does each predictor remember room A's object after a gap of G frames?

Held-out episodes (seeds >= 10,000, ``n_per_gap`` for every gap G = 1..12) are encoded by the frozen
autoencoder. Every predictor reads the true frames up to the one before the return and predicts the
return frame and the two after it open loop (each prediction fed back in). The predicted features are
decoded to pixels and read by a fixed rule (``read_out``): the object's cell is the cell whose centre
is furthest from room A's floor colour, its colour the nearest of the six. Recall = both right.
Writes outputs/memory_metrics.json (part 1's outputs/metrics.json is left alone), memory_recall.png
and memory_return.png.

Shape key: B episodes, T frames, N = 9 tokens, D feature dim, S = 3 steps from the return.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .autoencoder import FrameAutoencoder
from .forgetting import forgetting
from .pictures import save_recall_plot, save_return_picture
from .predictors import MemoryPredictor, predict_return
from .training import MODEL, encode
from .world import CELL, CHANCE, FLOORS, GRID, MAX_GAP, PALETTE, load_episodes, return_frame
from utils import (
    UserError,
    config_parser,
    given_flags,
    load_checkpoint,
    output_root,
    pick_device,
    seed_everything,
    set_threads,
)

HELDOUT, STEPS = 10_000, 3  # held-out seed offset; the return frame and the two after it
FASTER = (0.15, 0.3)  # test-time decays of the neural memory, beside the trained one
NAMES = {"no_memory": "3-frame context", "long_context": "whole-episode context",
         "lookup": "3 frames + lookup bank", "neural": "3 frames + neural memory"}  # fmt: skip


@dataclass
class MemoryValConfig:
    """Settings of part 2's validation; each is a flag (--field-name)."""

    checkpoint: str = ""  # default: <out>/checkpoints/memory.pt, where train.py --part memory writes it
    n_per_gap: int = 50  # held-out episodes for each gap 1..12
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    out: str = ""
    quick: bool = False


def parse_args(argv=None) -> MemoryValConfig:
    """Flags -> MemoryValConfig."""
    p = config_parser(
        MemoryValConfig, "validate.py --part memory", __doc__, "a smoke run: 2 episodes per gap"
    )
    cfg, typed = MemoryValConfig(**vars(p.parse_args(argv))), given_flags(p, argv)
    if cfg.quick and "n_per_gap" not in typed:
        cfg = dataclasses.replace(cfg, n_per_gap=2)
    if cfg.n_per_gap < 1:
        raise UserError(f"bad flags: --n-per-gap {cfg.n_per_gap} (must be at least 1)")
    if "checkpoint" in typed and not Path(cfg.checkpoint).exists():
        raise UserError(f"no such file: {cfg.checkpoint}")
    return cfg


def read_out(frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The nearest-colour rule: decoded room-A frames (B, 3, 24, 24) -> (colour, cell), (B,) each.

    Each cell's centre (4x4 px) is averaged; the object's cell is the one furthest from room A's floor,
    and its colour is the palette colour nearest to that cell's average.
    """
    b = len(frames)
    cells = frames.clamp(0, 1).view(b, 3, GRID, CELL, GRID, CELL)[:, :, :, 2:6, :, 2:6].mean((3, 5))
    cells = cells.permute(0, 2, 3, 1).reshape(b, GRID * GRID, 3)  # (B, 9, 3) mean colour per cell
    floor = torch.from_numpy(FLOORS[0]).float() / 255
    cell = (cells - floor).norm(dim=-1).argmax(-1)  # (B,)
    picked = cells[torch.arange(b), cell]  # (B, 3)
    colour = torch.cdist(picked, torch.from_numpy(PALETTE).float() / 255).argmin(-1)  # (B,)
    return colour, cell


def object_error(pred: torch.Tensor, truth: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
    """Pixel MSE inside the object's cell (8x8): pred, truth (B, 3, 24, 24), cell (B,) -> (B,)."""
    b = len(pred)
    r, c = cell // GRID, cell % GRID
    d = (pred.clamp(0, 1) - truth).pow(2).view(b, 3, GRID, CELL, GRID, CELL)
    return d[torch.arange(b), :, r, :, c].mean((1, 2, 3))


def load_models(ckpt: dict, device):
    """Rebuild the frozen autoencoder (+ feature statistics) and the four predictors from a checkpoint."""
    try:
        ae = FrameAutoencoder(ckpt["config"]["feat_dim"])
        ae.load_state_dict(ckpt["autoencoder"])
        predictors = {}
        for name, entry in ckpt["predictors"].items():
            predictors[name] = MemoryPredictor(**entry["spec"])
            predictors[name].load_state_dict(entry["state"])
            predictors[name].to(device).eval()
    except (KeyError, RuntimeError, TypeError) as e:
        raise UserError(f"the checkpoint does not match part 2's models ({type(e).__name__}); re-run "
                        "`uv run train.py --part memory`") from None  # fmt: skip
    return ae.to(device).eval(), ckpt["mu"], ckpt["sigma"], predictors


@torch.no_grad()
def measure(predictors: dict, ae, mu, sigma, z, data: dict, device, with_truth=True) -> tuple[dict, dict]:
    """Recall and object-region error at the return frame and the two after it, per gap and predictor.

    z: (B, T, N, D) the standardised features of the episodes in ``data``; with_truth: also read out the
    decoded true frames (the read-out's own accuracy).

    Returns:
        results {name: {"recall": (G, S), "colour": (G, S), "cell": (G, S), "obj_err": (G, S)}} (means
        over the episodes of each gap), and examples {name: decoded return frames (B, 24, 24, 3) uint8}.
    """
    actions, gaps = torch.from_numpy(data["actions"]), data["gap"]
    truth_col, truth_cell = torch.from_numpy(data["colour"][:, 0]), torch.from_numpy(data["cell"][:, 0])
    readout = {"truth (decoded)": None} if with_truth else {}  # the read-out's accuracy on true features
    results, examples = {}, {}
    for name, model in {**readout, **predictors}.items():
        rows = {k: np.zeros((MAX_GAP, STEPS)) for k in ("recall", "colour", "cell", "obj_err")}
        decoded_return = np.zeros((len(gaps), 24, 24, 3), np.uint8)
        for g in range(1, MAX_GAP + 1):
            sel = np.flatnonzero(gaps == g)
            if not len(sel):
                continue
            r = return_frame(g)
            zb = z[sel].to(device)
            if name in predictors:
                pred = predict_return(model, zb, actions[sel].to(device), r, STEPS)  # (B, S, N, D)
            else:
                pred = zb[:, r : r + STEPS]  # the true features: what a perfect predictor would give
            px = ae.decode((pred * sigma.to(device) + mu.to(device)).flatten(0, 1)).cpu()  # (B*S, 3, 24, 24)
            px = px.view(len(sel), STEPS, 3, 24, 24)
            true_px = (
                torch.from_numpy(data["frames"][sel, r : r + STEPS]).permute(0, 1, 4, 2, 3).float() / 255
            )
            for s in range(STEPS):
                colour, cell = read_out(px[:, s])
                ok_c, ok_p = colour == truth_col[sel], cell == truth_cell[sel]
                rows["colour"][g - 1, s] = ok_c.float().mean()
                rows["cell"][g - 1, s] = ok_p.float().mean()
                rows["recall"][g - 1, s] = (ok_c & ok_p).float().mean()
                rows["obj_err"][g - 1, s] = object_error(px[:, s], true_px[:, s], truth_cell[sel]).mean()
            decoded_return[sel] = (px[:, 0].clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
        results[name], examples[name] = rows, decoded_return
    return results, examples


def summarise(results: dict, capacity: int) -> tuple[dict, dict, dict]:
    """Headline metrics, baselines and targets from the per-gap results (return frame = step 0)."""
    far = slice(3, MAX_GAP)  # G = 4..12: beyond the 3-frame context by at least one frame
    rec = {name: r["recall"][:, 0] for name, r in results.items()}  # (G,) per predictor
    metrics = {
        "memory/recall_no_memory": float(rec["no_memory"][far].mean()),
        "memory/recall_lookup": float(rec["lookup"][:capacity].min()),  # the worst gap within capacity
        "memory/recall_neural": float(rec["neural"][far].mean()),
        "memory/recall_long_context": float(rec["long_context"][far].mean()),
    }
    for name, r in results.items():
        key = name if name in NAMES else "readout_of_truth"
        metrics[f"memory/recall_g4_12/{key}"] = float(r["recall"][far, 0].mean())
        metrics[f"memory/recall_after_return_g4_12/{key}"] = float(r["recall"][far, 1:].mean())
        metrics[f"memory/obj_err_g4_12/{key}"] = float(r["obj_err"][far, 0].mean())
        metrics[f"memory/colour_recall_g4_12/{key}"] = float(r["colour"][far, 0].mean())
        metrics[f"memory/cell_recall_g4_12/{key}"] = float(r["cell"][far, 0].mean())
    baselines = {
        "memory/recall_no_memory/chance": CHANCE,
        "memory/recall_lookup/no_memory": float(rec["no_memory"][:capacity].min()),
        "memory/recall_neural/no_memory": float(rec["no_memory"][far].mean()),
        "memory/recall_neural/long_context": float(rec["long_context"][far].mean()),
        "memory/recall_long_context/readout_of_truth": float(rec["truth (decoded)"][far].mean()),
    }
    targets = {
        "memory/recall_no_memory": ["<=", round(CHANCE + 0.10, 4)],  # within 0.10 of chance
        "memory/recall_lookup": [">=", 0.90],
        "memory/recall_neural": [">=", 0.70],
    }
    return metrics, baselines, targets


def print_tables(metrics: dict, baselines: dict, targets: dict, results: dict, capacity: int) -> None:
    """The targets table, then recall on the return frame per gap, per predictor."""
    print(f"\n{'metric':30s} {'value':>7s} {'target':>9s}   baseline")
    for key in ("memory/recall_no_memory", "memory/recall_lookup", "memory/recall_neural",
                "memory/recall_long_context"):  # fmt: skip
        op, t = targets.get(key, ("", None))
        tt = f"{op} {t:g}" if t is not None else "-"
        base = ", ".join(
            f"{k.split('/')[-1]} {v:.3f}" for k, v in baselines.items() if k.rsplit("/", 1)[0] == key
        )
        print(f"{key:30s} {metrics[key]:7.3f} {tt:>9s}   {base}")
    print(f"(no_memory, neural, long_context: mean over G = 4..12; lookup: the worst G <= its capacity "
          f"{capacity}; chance = 1/54)")  # fmt: skip
    gaps = "".join(f"{g:>5d}" for g in range(1, MAX_GAP + 1))
    print(f"\nrecall on the return frame, gap G = {'':4s}{gaps}   r+1,r+2  obj err")
    for name, r in results.items():
        label = NAMES.get(name, "read-out of the true frame")
        row = "".join(f"{v:5.2f}" for v in r["recall"][:, 0])
        print(f"{label:40s}{row}   {r['recall'][3:, 1:].mean():7.2f}  {r['obj_err'][3:, 0].mean():7.4f}")
    print(
        "(r+1, r+2: open loop after the return, mean over G = 4..12; obj err: pixel MSE in the object's cell)"
    )


def print_forgetting(forget: dict, trained: float) -> None:
    """Per decay alpha: the retention (1 - alpha)^(G - 3) and the neural memory's recall, per gap."""
    gaps = "".join(f"{g:>5d}" for g in range(1, MAX_GAP + 1))
    print(f"\nneural memory with decay alpha per write (trained with {trained:g}), G = {gaps}")
    for alpha, f in forget.items():
        print(
            f"{f'alpha {alpha:g}: retention (1 - alpha)^(G-3)':58s}"
            + "".join(f"{v:5.2f}" for v in f["retention"])
        )
        print(f"{'  recall on the return frame':58s}" + "".join(f"{v:5.2f}" for v in f["recall"]))


def main(argv=None) -> None:
    """Evaluate part 2 on held-out episodes; print the tables; write memory_metrics.json and pictures."""
    cfg = parse_args(argv)
    set_threads(cfg.threads)
    device = pick_device(cfg.device)
    seed_everything(cfg.seed)
    root = output_root(cfg.out)
    ckpt = load_checkpoint(cfg.checkpoint or root / "checkpoints" / "memory.pt", MODEL)
    ae, mu, sigma, predictors = load_models(ckpt, device)
    t0 = time.time()
    gaps = np.repeat(np.arange(1, MAX_GAP + 1), cfg.n_per_gap)  # (B,) every gap equally often
    data = load_episodes(gaps, cfg.seed + HELDOUT, root / "data", quiet=True)
    z = (encode(ae, data["frames"], device) - mu) / sigma  # (B, T, N, D)
    results, examples = measure(predictors, ae, mu, sigma, z, data, device)
    capacity, decay = ckpt["config"]["capacity"], ckpt["config"]["mem_decay"]
    metrics, baselines, targets = summarise(results, capacity)

    def recall_of(model) -> np.ndarray:  # (G,) recall on the return frame of one neural predictor
        return measure({"neural": model}, ae, mu, sigma, z, data, device, False)[0]["neural"]["recall"][:, 0]

    forget = forgetting(predictors["neural"], recall_of, (decay, *FASTER))
    for alpha, f in forget.items():
        metrics[f"memory/recall_neural/decay_{alpha:g}"] = float(f["recall"][3:].mean())
    ok = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b}
    passed = all(ok[op](metrics[k], t) for k, (op, t) in targets.items())
    out_dir = root / "outputs"
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "chapter": "5.dino-predictor",
        "part": "memory",
        "quick": cfg.quick,
        "device": str(device),
        "train_seconds": round(float(ckpt["train_seconds"]), 1),
        "validate_seconds": round(time.time() - t0, 1),
        "n_episodes": len(gaps),
        "per_gap_recall": {k: v["recall"][:, 0].round(4).tolist() for k, v in results.items()},
        "neural_forgetting": {
            f"{a:g}": {k: v.round(4).tolist() for k, v in f.items()} for a, f in forget.items()
        },
        "metrics": metrics,
        "baselines": baselines,
        "targets": targets,
        "passed": passed,
    }
    (out_dir / "memory_metrics.json").write_text(json.dumps(report, indent=2))
    save_recall_plot(results, forget, NAMES, capacity, CHANCE, out_dir / "memory_recall.png")
    save_return_picture(data, examples, NAMES, out_dir / "memory_return.png")
    print_tables(metrics, baselines, targets, results, capacity)
    print_forgetting(forget, decay)
    print(f"({len(gaps)} held-out episodes from seed {cfg.seed + HELDOUT}, {cfg.n_per_gap} per gap)")
    if cfg.quick:
        print("\nsmoke run (--quick): this checks the plumbing; the numbers are not the lesson's")
    print(f"\ntrain seconds {ckpt['train_seconds']:.0f}, validate seconds {time.time() - t0:.0f}; "
          f"targets {'PASSED' if passed else 'NOT met'}")  # fmt: skip
    print(f"wrote memory_metrics.json, memory_recall.png and memory_return.png in {out_dir}")
