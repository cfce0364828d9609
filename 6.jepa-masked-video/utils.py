"""Plumbing shared by train.py and validate.py: devices, precision, checkpoints, one-line errors.

Copied from chapter 4 (4.inverse-dynamics/utils.py, itself chapter 3's, 2's and 1's); load_checkpoint's
hint names this chapter's model. The bf16 helpers are left out: this chapter trains in fp32.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).parent
CKPT_DIR = HERE / "checkpoints"
OUT_DIR = HERE / "outputs"


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
        expected_model: the "model" entry it must hold ("jepa-masked-video").
    """
    path = Path(path)
    if not path.exists():
        hint = "run `uv run train.py` first" if expected_model == "jepa-masked-video" else "check the path"
        raise UserError(f"no checkpoint at {path}: {hint}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)  # weights_only: no pickled code
    except Exception as e:  # torch raises many types for a damaged file
        raise UserError(f"{path} is not a readable checkpoint ({type(e).__name__})") from e
    if not isinstance(ckpt, dict) or ckpt.get("model") != expected_model:
        found = ckpt.get("model") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise UserError(f"{path} holds a {found!r} model, but a {expected_model!r} checkpoint was expected")
    return ckpt


def to_float(frames) -> torch.Tensor:
    """uint8 frames (..., H, W, 3) (numpy or torch) -> a float tensor (..., 3, H, W) in [0, 1]."""
    x = torch.as_tensor(frames)
    return x.movedim(-1, -3).float() / 255.0
