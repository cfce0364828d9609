"""Plumbing shared by train.py and validate.py: threads, devices, precision, checkpoints, one-line errors,
and the command-line flags built from a config dataclass.

Later chapters carry copies of this file; the thread helper (choose_threads, set_threads), given_flags and
command are the same in each (here command also shell-quotes its arguments, since --data and --out take
paths), copied so every chapter stands alone.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import os
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).parent  # the default output root: data/, checkpoints/ and outputs/ go under it


def output_root(out: str) -> Path:
    """The folder that holds data/, checkpoints/ and outputs/: ``--out DIR``, or this chapter's folder."""
    return Path(out).expanduser() if out else HERE


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


def cpu_has_fast_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (AVX512-BF16 or AMX): then bf16 autocast can be
    faster than fp32. On other CPUs bf16 is emulated and slower, so we stay in fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast(device: torch.device, precision: str):
    """A context that runs the forward pass in bf16 when asked ('bf16') or when it pays ('auto')."""
    if precision == "fp32" or device.type == "mps":
        return contextlib.nullcontext()
    if precision == "auto":
        fast = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_fast_bf16()
        if not fast:
            return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def choose_threads(
    requested: int = 0, cores: int | None = None, load: float | None = None
) -> tuple[int, str]:
    """How many torch threads to use, and why (printed as the first line of every script).

    Two torch threads on a 2-core laptop that another busy process also uses wait for each other at
    every operation (the root README measures it). So we count the cores really free: the cores minus
    the 1-minute load average, rounded, at least 1.

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


def setting(default, help: str):
    """A config field with a default and the help text ``--help`` prints for its flag."""
    return dataclasses.field(default=default, metadata={"help": help})


def add_config_flags(parser: argparse.ArgumentParser, config, choices: dict | None = None) -> None:
    """One flag per field of the dataclass ``config`` (--field-name), its default and help text from the
    field: a bool is a switch, a list[int] takes one or more ints; ``choices`` {field: allowed values}."""
    choices = choices or {}
    for f in dataclasses.fields(config):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        helptext = f.metadata["help"] + (f" (default: {default})" if default != "" else "")  # "": in help
        if f.type == "bool":
            parser.add_argument(flag, action="store_true", help=f.metadata["help"])
        elif f.type == "list[int]":
            parser.add_argument(flag, type=int, nargs="+", default=default, help=helptext)
        else:
            typ = {"int": int, "float": float, "str": str}[f.type]
            parser.add_argument(flag, type=typ, default=default, choices=choices.get(f.name), help=helptext)


def given_flags(parser: argparse.ArgumentParser, argv=None) -> set[str]:
    """The settings typed on the command line (argparse dest names), so that --quick leaves them alone."""
    probe = copy.deepcopy(parser)
    for action in probe._actions:  # argparse has no public way to ask which flags were typed
        action.default = argparse.SUPPRESS  # an untyped flag then leaves no attribute at all
    return set(vars(probe.parse_args(argv)))


def command(script: str, *args: str) -> str:
    """The command that runs this chapter's ``script`` from the current directory, e.g.
    'uv run validate.py --quick' inside the chapter, 'uv run 2.latent-dynamics/validate.py' from the root."""
    return " ".join(["uv run", os.path.relpath(HERE / script), *map(shlex.quote, args)])  # quoted: paste-able


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


def load_checkpoint(path: Path, expected_model: str | None = None, train_command: str = "") -> dict:
    """Load a checkpoint written by train.py, with one-line errors for every way it can be wrong.

    Args:
        path: the .pt file.
        expected_model: "vae" or "fsq" refuses a checkpoint of the other model; None accepts either.
        train_command: for the default checkpoint, the command that writes it (said when it is missing);
            "" for a path the user typed, where a missing file is more likely a typo.
    """
    path = Path(path)
    if not path.exists():
        if not train_command:
            raise UserError(f"no such file: {path}")
        shown = os.path.relpath(path) if not os.path.relpath(path).startswith("..") else str(path)
        raise UserError(f"no checkpoint at {shown}: run `{train_command}` first")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)  # weights_only: no pickled code
    except Exception as e:  # torch raises many types for a damaged file
        raise UserError(f"{path} is not a readable checkpoint ({type(e).__name__}); re-run train.py") from e
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "model" not in ckpt:
        raise UserError(f"{path} is not a chapter-1 checkpoint (no 'model'/'state_dict'); re-run train.py")
    if ckpt["model"] not in ("vae", "fsq"):
        raise UserError(f"{path} holds a '{ckpt['model']}' model, not a chapter-1 'vae' or 'fsq'")
    if expected_model is not None and ckpt["model"] != expected_model:
        raise UserError(
            f"{path} holds a '{ckpt['model']}' model, but a '{expected_model}' model was expected"
        )
    return ckpt
