"""Plumbing shared by train.py and validate.py: devices, precision, checkpoints, one-line errors.

Copied from chapter 3 (3.action-conditioning/utils.py, itself chapters 1 and 2's) without the bf16
helpers (fp32 throughout here); load_checkpoint's hint names this chapter's model. choose_threads,
set_threads, given_flags and command are chapter 1's (1.video-encoder-decoder/utils.py), copied so this
chapter stands alone.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).parent
CKPT_DIR = HERE / "checkpoints"
OUT_DIR = HERE / "outputs"


def output_root(out: str) -> Path:
    """--out: the folder that data/, checkpoints/ and outputs/ go under ("": this chapter's folder)."""
    return Path(out) if out else HERE


def choose_threads(
    requested: int = 0, cores: int | None = None, load: float | None = None
) -> tuple[int, str]:
    """How many torch threads to use, and why (printed as the first line of every script).

    Two torch threads on a 2-core laptop that another busy process also uses wait for each other at
    every operation (chapter 1's quick VAE: 185 s with 2 threads, 10 s with 1). So we count the cores
    really free: the cores minus the 1-minute load average, rounded, at least 1.

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


PARTS = ("dino", "memory")
PART_HELP = "dino: part 1 (the arm, planning); memory: part 2 (two rooms, memory), with its own flags"


def split_part(argv=None) -> tuple[str, list[str]]:
    """--part dino|memory (default dino) and the other flags, for train.py and validate.py to dispatch.

    Part 2's flags differ from part 1's, so the part is read first and the rest goes to its own parser.
    """
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--part", choices=PARTS, default="dino")
    ns, rest = p.parse_known_args(argv)
    return ns.part, rest


def config_parser(config_cls, prog: str, description: str, quick_help: str) -> argparse.ArgumentParser:
    """An argparse parser with one flag per field of the dataclass ``config_cls`` (--field-name), as
    part 2's scripts use: bools are switches (``quick_help`` for --quick), --device has its choices."""
    p = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for f in dataclasses.fields(config_cls):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            p.add_argument(flag, action="store_true", help=quick_help)
        else:
            kw = {"choices": ["auto", "cpu", "cuda", "mps"]} if f.name == "device" else {}
            typ = {"int": int, "float": float, "str": str}[f.type]
            p.add_argument(flag, type=typ, default=f.default, help=f"(default: {f.default})", **kw)
    return p


def command(script: str, *args: str) -> str:
    """The command that runs this chapter's ``script`` from the current directory, e.g.
    'uv run validate.py --quick' inside the chapter, 'uv run 5.dino-predictor/validate.py' from the root."""
    return " ".join(["uv run", os.path.relpath(HERE / script), *args])


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


def load_checkpoint(path, expected_model: str) -> dict:
    """Load a checkpoint written by a train.py, with one-line errors for every way it can be wrong.

    Args:
        path: the .pt file.
        expected_model: the "model" entry it must hold ("dino-wm", or "dino-wm-memory" for part 2).
    """
    path = Path(path)
    if not path.exists():
        hints = {"dino-wm": command("train.py"), "dino-wm-memory": command("train.py", "--part", "memory")}
        hint = f"run `{hints[expected_model]}` first" if expected_model in hints else "check the path"
        raise UserError(f"no checkpoint at {path}: {hint}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)  # weights_only: no pickled code
    except Exception as e:  # torch raises many types for a damaged file
        raise UserError(f"{path} is not a readable checkpoint ({type(e).__name__})") from e
    if not isinstance(ckpt, dict) or ckpt.get("model") != expected_model:
        found = ckpt.get("model") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise UserError(f"{path} holds a {found!r} model, but a {expected_model!r} checkpoint was expected")
    return ckpt
