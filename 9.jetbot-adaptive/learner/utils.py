"""Plumbing shared by the learner and the scripts: one-line errors, devices, seeding, frame resizing,
action <-> vector conversion and the dot locator.

UserError / exit_on_user_error / pick_device / seed_everything are copied from chapter 4
(4.inverse-dynamics/utils.py); choose_threads / set_threads / given_flags / command from chapter 5
(5.dino-predictor/utils.py, itself chapter 1's); the dot locator follows chapter 3's idea
(3.action-conditioning), with a ring-aware centroid because the toroidal dot wraps in x.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:  # torch loads on first use: the JetBot example checks its camera before paying for it
    import torch

HERE = Path(__file__).resolve().parents[1]  # the chapter folder
WORLD_SIZE = 224  # the toroidal dot's frames are 224 x 224; positions are reported in these pixels


class UserError(Exception):
    """A problem the user can fix (missing checkpoint, bad flag, lost robot): printed as one line."""


def exit_on_user_error(main):
    """Run ``main()``; turn a UserError into one line on stderr and exit code 2 (no traceback), and a
    Ctrl-C that ``main`` did not handle into one line and exit code 130 (the shell's code for it)."""
    try:
        main()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def pick_device(name: str) -> torch.device:
    """'auto' picks cuda, then mps, then cpu; an explicit device that is missing is a UserError."""
    import torch

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


def set_threads(requested: int = 0, apply: bool = True) -> int:
    """Give torch the threads choose_threads picks, print the choice, and return it. apply=False only
    prints and returns the number (the caller sets it once torch is loaded)."""
    threads, why = choose_threads(requested)
    if apply:
        import torch

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
    'uv run validate.py --quick' inside the chapter, 'uv run 9.jetbot-adaptive/validate.py' from the root."""
    return " ".join(["uv run", os.path.relpath(HERE / script), *args])


def seed_everything(seed: int) -> None:
    """Seed torch and numpy so that a run is reproducible from ``seed``."""
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed)


def preprocess_frame(frame: np.ndarray, size: int) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (3, size, size) float in [0, 1], area-averaged so a small dot keeps its
    centroid and its total brightness (nearest-neighbour resizing could drop it entirely)."""
    import torch

    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
        shape = getattr(frame, "shape", type(frame).__name__)
        raise ValueError(f"expected an observation of shape (H, W, 3) uint8, got {shape}")
    if frame.shape[:2] != (size, size):
        frame = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).float() / 255.0


def action_to_vector(action: dict, channels: list[str]) -> list[float]:
    """An action dict -> the list of its ACTION_CHANNELS values (missing keys count as 0)."""
    return [float(action.get(c, 0.0)) for c in channels]


def action_index(action: dict, action_space: list[dict]) -> int:
    """Position of ``action`` in the robot's action space (ValueError when it is not there)."""
    for i, a in enumerate(action_space):
        if a == action:
            return i
    raise ValueError(f"action {action!r} is not in the action space {action_space!r}")


def dot_position(frames: torch.Tensor, world: int = WORLD_SIZE) -> torch.Tensor:
    """Where is the dot? frames: (B, 3, S, S) in [0, 1] -> (B, 2) centre (x, y) in world pixels.

    Find the brightest pixel, then take the brightness-weighted centroid of the 7x7 window around it
    (x wraps around the ring, rows outside the frame count zero). Area-averaged resizing preserves the
    centroid, so this measures sub-pixel positions; a frame without a dot gives a meaningless but finite
    answer.
    """
    import torch

    b, _, s, _ = frames.shape
    img = frames.float().mean(dim=1).clamp(0, 1)  # (B, S, S)
    img = (img - 0.05).clamp_min(0)  # ignore faint haze around the dot
    flat = img.reshape(b, -1).argmax(dim=1)
    cy, cx = flat // s, flat % s  # (B,)
    off = torch.arange(-3, 4)
    xs = (cx[:, None] + off) % s  # (B, 7) wrap in x
    ys = cy[:, None] + off  # (B, 7); rows outside the frame get zero weight below
    inside = ((ys >= 0) & (ys < s)).float()
    win = img[torch.arange(b)[:, None, None], ys.clamp(0, s - 1)[:, :, None], xs[:, None, :]]  # (B, 7, 7)
    win = win * inside[:, :, None]
    mass = win.sum(dim=(1, 2)).clamp_min(1e-8)
    dx = (win.sum(dim=1) * off).sum(dim=1) / mass  # (B,) offset from the brightest pixel
    dy = (win.sum(dim=2) * off).sum(dim=1) / mass
    scale = world / s
    x = ((cx + dx) + 0.5) * scale - 0.5
    y = ((cy.float() + dy) + 0.5) * scale - 0.5
    return torch.stack([x % world, y], dim=1)


def ring_error(pred_xy: torch.Tensor, true_xy: torch.Tensor, world: int = WORLD_SIZE) -> torch.Tensor:
    """Euclidean distance (B,) between positions (B, 2), with x measured around the ring."""
    import torch

    dx = (pred_xy[:, 0] - true_xy[:, 0]).abs() % world
    dx = torch.minimum(dx, world - dx)
    return torch.sqrt(dx**2 + (pred_xy[:, 1] - true_xy[:, 1]) ** 2)
