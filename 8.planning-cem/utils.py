"""Plumbing shared by train.py, validate.py and pusht/: devices, checkpoints, one-line errors, the
metrics table.

Copied from chapter 4 (4.inverse-dynamics/utils.py, itself chapter 3's, 2's and 1's);
load_checkpoint's hint names this chapter's model; the bf16 helpers are left out (fp32 here).
The thread helper (choose_threads, set_threads), given_flags and command are the same as chapter 1's,
copied so this chapter stands alone.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).parent
CKPT_DIR = HERE / "checkpoints"  # the default output root's folders (train.py and validate.py take --out)
OUT_DIR = HERE / "outputs"


def output_root(out: str) -> Path:
    """--out: the folder that data/, checkpoints/ and outputs/ go under ("": this chapter's folder)."""
    return Path(out) if out else HERE


class UserError(Exception):
    """A problem the user can fix (missing checkpoint, bad file, full disk): printed as one line."""


def exit_on_user_error(main):
    """Run ``main()``; turn a UserError into one line on stderr and exit code 2 (no traceback)."""
    try:
        main()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def pick_device(name: str) -> torch.device:
    """'auto' picks cuda, then mps, then cpu; an explicit device that is missing is a UserError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA GPU is visible; use --device auto")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserError("--device mps was asked for but MPS is not available; use --device auto")
    return torch.device(name)


def choose_threads(
    requested: int = 0, cores: int | None = None, load: float | None = None
) -> tuple[int, str]:
    """How many torch threads to use, and why (printed as the first line of every script).

    Two torch threads on a 2-core laptop that another busy process also uses wait for each other at
    every operation: chapter 1's quick VAE took 185 s with 2 threads and 10 s with 1. So we count the
    cores really free: the cores minus the 1-minute load average, rounded, at least 1.

    Args:
        requested: --threads N; N > 0 wins over everything, 0 lets the machine decide.
        cores, load: the core count and the 1-minute load average (default: measured now; tests fake them).
    Returns:
        (threads, reason), e.g. (1, "2 cores, load 1.3").
    """
    if requested > 0:
        return requested, "set by --threads"
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env), "set by OMP_NUM_THREADS"
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (OSError, AttributeError):  # no load average (Windows): assume the machine is free
            load = 0.0
    return max(1, min(cores, round(cores - load))), f"{cores} cores, load {load:.1f}"


def set_threads(requested: int = 0) -> int:
    """Give torch the threads choose_threads picks, print the choice, and return it."""
    threads, why = choose_threads(requested)
    torch.set_num_threads(threads)
    print(f"torch threads: {threads} ({why}; --threads N to override)", flush=True)
    return threads


def given_flags(parser: argparse.ArgumentParser, argv=None) -> set[str]:
    """The settings typed on the command line (argparse dest names), so that --quick leaves them alone."""
    probe = copy.deepcopy(parser)
    for action in probe._actions:  # argparse has no public way to ask which flags were typed
        action.default = argparse.SUPPRESS  # an untyped flag then leaves no attribute at all
    return set(vars(probe.parse_args(argv)))


def command(script: str, *args: str) -> str:
    """The command that runs this chapter's ``script`` from the current directory, e.g.
    'uv run validate.py --quick' inside the chapter, 'uv run 2.latent-dynamics/validate.py' from the root."""
    return " ".join(["uv run", os.path.relpath(HERE / script), *args])


def seed_everything(seed: int) -> None:
    """Seed torch and numpy so that a run is reproducible from ``seed``."""
    torch.manual_seed(seed)
    np.random.seed(seed)


def save_checkpoint(obj: dict, path: Path) -> None:
    """Write a checkpoint atomically (temp file, then os.replace); a full disk is a UserError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UserError(f"could not write checkpoint {path}: {e.strerror or e}") from e


def load_checkpoint(path, expected_model: str, train_args: tuple[str, ...] | None = None) -> dict:
    """Load a checkpoint written by a train.py, with one-line errors for every way it can be wrong.

    Args:
        path: the .pt file.
        expected_model: the "model" entry it must hold ("planning-world-model").
        train_args: set when ``path`` is the default checkpoint: a missing file then means "not trained
            yet", and the error names the train.py command (with these flags, e.g. --out DIR) that writes it.
    """
    path = Path(path)
    if not path.exists():  # the default file: not trained yet; a path the user typed: a typo?
        if train_args is None and path.resolve().parent != CKPT_DIR.resolve():
            raise UserError(f"no such file: {path}")
        train, shown = command("train.py", *(train_args or ())), os.path.relpath(path)
        shown = str(path.resolve()) if shown.startswith("..") else shown  # a path outside: say it whole
        raise UserError(f"no checkpoint at {shown}: run `{train}` first")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)  # weights_only: no pickled code
    except Exception as e:  # torch raises many types for a damaged file
        raise UserError(f"{path} is not a readable checkpoint ({type(e).__name__})") from e
    if not isinstance(ckpt, dict) or ckpt.get("model") != expected_model:
        found = ckpt.get("model") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise UserError(f"{path} holds a {found!r} model, but a {expected_model!r} checkpoint was expected")
    return ckpt


def print_table(
    metrics: dict, baselines: dict, targets: dict, tasks: dict | None = None, intervals: dict | None = None
) -> None:
    """The aligned table: metric, value, its 95 % interval (success rates), tasks it was measured on
    (plan_s: one robot timed alone on that many), target, baseline."""
    rows = [("metric", "value", "95% interval", "tasks", "target", "baseline")]
    for k, v in metrics.items():
        t = f"{targets[k][0]} {targets[k][1]}" if k in targets else ""
        base = "  ".join(
            f"{b.split('/')[-1]} {bv:.3g}" for b, bv in baselines.items() if b.rsplit("/", 1)[0] == k
        )
        ci = f"[{intervals[k][0]:.3f}, {intervals[k][1]:.3f}]" if k in (intervals or {}) else ""
        rows.append((k, f"{v:.3g}", ci, str((tasks or {}).get(k, "")), t, base))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
