"""Evaluate chapter 7 on held-out questions (a seed never seen in training).

    uv run validate.py
    uv run validate.py --checkpoint checkpoints/fusion.pt --quick
    uv run validate.py --out /tmp/run1    # reads /tmp/run1/checkpoints/fusion.pt, writes /tmp/run1/outputs

For present questions ("where is the agent ?") and future questions ("where will the agent be after
right right up ?") it measures the accuracy of: the VLM alone (no world tokens), the fused model with a
random (untrained) projection, the fused model, and the fused model with its world tokens zeroed, each
with num_world_steps = 0 and k. Also the world model's own position error and the trainable share of
parameters. Writes outputs/metrics.json and outputs/fusion_answers.png (for another checkpoint than
checkpoints/fusion.pt: outputs/metrics_<its name>.json and outputs/fusion_answers_<its name>.png).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from evaluate import accuracy, answer_all, build_models, world_model_errors
from pictures import save_answers
from tqdm import tqdm

from data_utils import load_questions
from utils import (
    UserError,
    exit_on_user_error,
    given_flags,
    load_checkpoint,
    output_root,
    pick_device,
    seed_everything,
    set_threads,
)

HELDOUT_SEED_OFFSET = 10_000
TARGETS = {
    "fused/k/future_acc": (">=", 0.85),
    "fused/k/future_gain_over_vlm": (">=", 0.30),
    "random_proj/k/future_gain_over_vlm": ("<=", 0.05),  # no better than the VLM alone
    "zeroed/k/future_gain_over_vlm": ("<=", 0.05),
    "fused/present_drop_vs_vlm": ("<=", 0.03),  # present questions not hurt by the fusion
    "present_acc_min_over_variants": (">=", 0.90),
}


@dataclass
class ValConfig:
    """Validation settings (each is a flag)."""

    checkpoint: str = ""  # default: <out>/checkpoints/fusion.pt, where train.py writes it
    n_questions: int = 1000  # held-out questions (each asked about the present and about the future)
    batch: int = 250
    threads: int = 0
    seed: int = 0
    device: str = "auto"
    out: str = ""  # output root: reads checkpoints/, writes data/ and outputs/ ("": this chapter's folder)
    quick: bool = False


def parse_args(argv=None) -> ValConfig:
    """Command-line flags -> ValConfig."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--checkpoint", default="", help="written by train.py (default: <out>/checkpoints/fusion.pt)"
    )
    p.add_argument("--n-questions", type=int, default=1000, help="held-out questions (default: 1000)")
    p.add_argument("--batch", type=int, default=250, help="questions answered at once (default: 250)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: 0, the cores free now)")
    p.add_argument("--seed", type=int, default=0, help="held-out data uses seed + 10000 (default: 0)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument(
        "--out", default="", help="output root: reads checkpoints/, writes data/ and outputs/ (default: here)"
    )
    p.add_argument("--quick", action="store_true", help="100 held-out questions (unless given)")
    cfg = ValConfig(**vars(p.parse_args(argv)))
    if cfg.quick and "n_questions" not in given_flags(p, argv):
        cfg.n_questions = 100
    if cfg.n_questions < 10 or cfg.batch < 1:
        raise UserError("--n-questions must be >= 10 and --batch >= 1")
    return cfg


def evaluate_variants(fused, random_proj, qa: dict, k: int, cfg: ValConfig, device) -> tuple[dict, dict]:
    """Accuracy on present and future questions for every variant and num_world_steps in {0, k}.

    Returns the metrics and the future answers of the VLM alone and the fused model (for the picture)."""
    m, kept = {}, {}
    bar = tqdm(total=14, desc="answering: 7 variants x present/future", leave=False)  # 2 x (1 + 3 x 2)
    for kind, truth in (("present", qa["present"]), ("future", qa["future"])):
        ans = answer_all(random_proj, qa, kind, "off", 0, cfg.batch, device)  # the pre-trained VLM
        bar.update()
        m[f"vlm_alone/{kind}_acc"] = accuracy(ans, truth)
        kept[("vlm", kind)] = ans
        for name, model, mode in (
            ("random_proj", random_proj, "on"),
            ("fused", fused, "on"),
            ("zeroed", fused, "zero"),
        ):
            for steps, tag in ((0, "0"), (k, "k")):
                ans = answer_all(model, qa, kind, mode, steps, cfg.batch, device)
                bar.update()
                m[f"{name}/{tag}/{kind}_acc"] = accuracy(ans, truth)
                if name == "fused" and tag == "k" and kind == "future":
                    kept[("fused", kind)] = ans
                    m["fused/k/future_acc_wall_stopped"] = accuracy(ans, truth, qa["blocked"])
    bar.close()
    vlm = m["vlm_alone/future_acc"]
    m["vlm_alone/future_acc_wall_stopped"] = accuracy(kept[("vlm", "future")], qa["future"], qa["blocked"])
    for name in ("fused", "random_proj", "zeroed"):  # signed: negative means worse than the VLM alone
        m[f"{name}/k/future_gain_over_vlm"] = m[f"{name}/k/future_acc"] - vlm
    m["fused/present_drop_vs_vlm"] = m["vlm_alone/present_acc"] - min(
        m["fused/0/present_acc"], m["fused/k/present_acc"]
    )
    m["present_acc_min_over_variants"] = min(v for key, v in m.items() if key.endswith("present_acc"))
    return m, {"vlm": kept[("vlm", "future")], "fused": kept[("fused", "future")]}


def print_table(metrics: dict, baselines: dict) -> None:
    """The aligned table: metric, value, target, baseline."""
    print(f"\n{'metric':36s} {'value':>8s} {'target':>8s}   baseline")
    for key, value in metrics.items():
        tgt = f"{TARGETS[key][0]} {TARGETS[key][1]:g}" if key in TARGETS else ""
        if key.endswith("future_acc_wall_stopped"):
            bl = f"copy_present {baselines['future_acc_wall_stopped/copy_present']:.3f}"
        elif key.endswith("future_acc"):
            bl = "copy_present {:.3f}, no_walls {:.3f}".format(
                baselines["future_acc/copy_present"], baselines["future_acc/no_walls_physics"]
            )
        elif key.endswith("present_acc") or key == "present_acc_min_over_variants":
            bl = f"chance {baselines['present_acc/chance']:.4f}"
        elif key.endswith("gain_over_vlm"):
            bl = f"vlm_alone future_acc {metrics['vlm_alone/future_acc']:.3f}"
        elif key == "fused/present_drop_vs_vlm":
            bl = f"vlm_alone present_acc {metrics['vlm_alone/present_acc']:.3f}"
        elif key == "world_model/present_pos_err":
            bl = f"arena_centre {baselines['present_pos_err/arena_centre']:.3f}"
        elif key == "world_model/future_pos_err":
            bl = f"copy_present {baselines['future_pos_err/copy_present']:.3f}"
        elif key == "world_model/future_cell_acc":
            bl = f"no_walls {baselines['future_acc/no_walls_physics']:.3f}"
        elif key == "trainable_percent":
            bl = "100 (train everything)"
        else:
            bl = ""
        print(f"{key:36s} {value:8.3f} {tgt:>8s}   {bl}")


def main(argv=None) -> None:
    """Load the checkpoint, answer held-out questions with every variant, print and save the results."""
    cfg = parse_args(argv)
    set_threads(cfg.threads)
    t0 = time.time()
    device = pick_device(cfg.device)
    seed_everything(cfg.seed)
    root = output_root(cfg.out)  # reads checkpoints/, writes data/ and outputs/ under it
    if cfg.checkpoint:
        ckpt = load_checkpoint(cfg.checkpoint, "vlm-world-fusion")
    else:  # the file train.py writes; if it is missing, the error says which train.py command writes it
        train_args = ("--out", cfg.out) if cfg.out else ()
        ckpt = load_checkpoint(root / "checkpoints" / "fusion.pt", "vlm-world-fusion", train_args)
    fused, random_proj = build_models(ckpt, device)
    k = ckpt["config"]["k"]
    heldout = cfg.seed + HELDOUT_SEED_OFFSET
    qa = load_questions(cfg.n_questions, k, seed=heldout, quiet=True, data_dir=root / "data")
    with torch.no_grad():
        metrics, answers = evaluate_variants(fused, random_proj, qa, k, cfg, device)
        wm = world_model_errors(fused.world_model, qa, device)
    metrics |= {key: v for key, v in wm.items() if key.startswith("world_model/")}
    metrics["trainable_percent"] = fused.parameter_report()["percent"]
    baselines = {
        key.split("/", 1)[1].replace("future_cell_acc", "future_acc"): v
        for key, v in wm.items()
        if key.startswith("baseline/")
    }
    baselines["present_acc/chance"] = 1 / 16
    targets = {key: list(v) for key, v in TARGETS.items()}
    ok = {"<=": lambda a, t: a <= t, ">=": lambda a, t: a >= t}
    passed = bool(all(ok[op](metrics[key], t) for key, (op, t) in targets.items()))
    report = {
        "chapter": "7.vlm-world-fusion",
        "quick": cfg.quick,
        "device": str(device),
        "train_seconds": round(float(ckpt["train_seconds"]), 1),
        "metrics": metrics,
        "baselines": baselines,
        "targets": targets,
        "passed": passed,
        "lm": ckpt["config"]["lm"],
        "k": k,
        "parameters": fused.parameter_report(),
        "n_questions": cfg.n_questions,
    }
    out_dir = root / "outputs"
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(cfg.checkpoint).stem if cfg.checkpoint else "fusion"
    tag = "" if stem == "fusion" else f"_{stem}"  # staged checkpoints do not overwrite the default's files
    metrics_path = out_dir / f"metrics{tag}.json"
    metrics_path.write_text(json.dumps(report, indent=2))
    picture = save_answers(fused, qa, answers, device, out_dir, f"fusion_answers{tag}.png")
    print_table(metrics, baselines)
    share = report["parameters"]
    print(
        f"\nlanguage model {report['lm']}, k = {k}, held-out questions {cfg.n_questions}, "
        f"wall-stopped futures {float(np.mean(qa['blocked'])):.2f}"
    )
    print(
        f"trainable in stage 3: {share['trainable']:,} of {share['total']:,} parameters "
        f"({share['percent']:.2f} %)"
    )
    if cfg.quick:
        print("\nsmoke run (--quick): this checks the plumbing; the numbers are not the lesson's")
    print(f"\ntrain seconds {ckpt['train_seconds']:.0f}, validate seconds {time.time() - t0:.0f}; "
          f"targets {'PASSED' if passed else 'NOT met'}")  # fmt: skip
    print(f"wrote {metrics_path} and {picture}")


if __name__ == "__main__":
    exit_on_user_error(main)
