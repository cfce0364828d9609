"""Checkpoints that survive a crash: one consistent set of files, and the previous set as a backup.

A save writes ``autoencoder.pth``, ``predictor.pth``, ``history.pth`` (the last 100 frames and
actions) and ``state.json`` (step counters, the last 100 history entries). Before a new set is
written the current one is renamed to its ``*_backup`` twins (one deep, rolling). Every file carries
the same ``save_id``: a set whose files do not all load or do not agree (a crash in the middle of a
save, a corrupted file) is refused as a whole, and loading falls back to the backup set. Files are
written atomically (temp file, then os.replace) and read with ``torch.load(weights_only=True)``:
tensors and plain containers only, never pickled code.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

BACKUP = "_backup"
KEYS = ("autoencoder", "predictor", "history", "state")  # the files of one set; state.json is written last


def _atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then move the temp file over ``path`` in one step."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def file_names(suffix: str = "") -> dict:
    """The names of one checkpoint set: {'autoencoder': 'autoencoder.pth', 'predictor': ..., ...}."""
    return {key: f"{key}{suffix}.{'json' if key == 'state' else 'pth'}" for key in KEYS}


def save_set(folder: Path, blobs: dict, state: dict) -> None:
    """Rotate the current set to ``*_backup`` and write a new one.

    Args:
        folder: the checkpoint folder (created if missing).
        blobs: {'autoencoder': dict, 'predictor': dict, 'history': dict} of tensors / plain data.
        state: the JSON-able learner state.
    """
    folder.mkdir(parents=True, exist_ok=True)
    save_id = f"{time.time():.6f}-{os.getpid()}"
    new, old = file_names(), file_names(BACKUP)
    if (folder / new["state"]).exists():  # the previous complete set becomes the backup
        for key, name in new.items():
            if (folder / name).exists():
                os.replace(folder / name, folder / old[key])
    for key, name in new.items():
        if key == "state":
            continue
        _atomic_write(folder / name, lambda p, b=blobs[key]: torch.save({**b, "save_id": save_id}, p))
    text = json.dumps({**state, "save_id": save_id}, indent=1)
    _atomic_write(folder / new["state"], lambda p: p.write_text(text))  # written last: marks "complete"


def _load_set(folder: Path, suffix: str) -> tuple[dict, dict]:
    """Load one set; raise ValueError naming the first file that is missing, corrupt or inconsistent."""
    state_path = folder / f"state{suffix}.json"
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{state_path.name}: {type(e).__name__}") from e
    blobs = {}
    for key, name in file_names(suffix).items():
        if key == "state":
            continue
        try:
            blobs[key] = torch.load(folder / name, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises many types for a damaged file
            raise ValueError(f"{name}: {type(e).__name__}") from e
        if not isinstance(blobs[key], dict) or blobs[key].get("save_id") != state.get("save_id"):
            raise ValueError(f"{name} does not belong to the same save as {state_path.name}")
    return state, blobs


def load_latest(folder: Path, log=print) -> tuple[dict, dict, str] | None:
    """Load the primary set, or the backup when the primary is damaged; None when neither exists.

    Returns (state, blobs, which) with which in {'primary', 'backup'}; raises ValueError when files
    exist but neither set is usable.
    """
    folder = Path(folder)
    if not (folder / "state.json").exists() and not (folder / f"state{BACKUP}.json").exists():
        return None
    errors = []
    for which, suffix in (("primary", ""), ("backup", BACKUP)):
        try:
            state, blobs = _load_set(folder, suffix)
        except ValueError as e:
            errors.append(f"{which}: {e}")
            continue
        if errors:
            log(f"primary checkpoint unusable ({errors[0]}); resumed from the backup set")
        return state, blobs, which
    raise ValueError(f"no usable checkpoint in {folder} ({'; '.join(errors)})")


def load_models(folder: Path, n_actions: int, log=print) -> tuple:
    """(config, codec, predictor, state) from a learner checkpoint folder, in eval mode, on the CPU.

    n_actions: the robot's number of actions (the classifier's classes). Raises FileNotFoundError when
    the folder holds no checkpoint and ValueError (one line) when it does not load or fit.
    """
    from config import AdaptiveWorldModelConfig

    from .build import build_codec, build_predictor

    found = load_latest(folder, log)
    if found is None:
        raise FileNotFoundError(f"no checkpoint in {folder}")
    state, blobs, _ = found
    ae = blobs["autoencoder"]
    if ae.get("model") != "adaptive-autoencoder":
        raise ValueError(f"{folder} holds a {ae.get('model')!r} model, not the adaptive world model's")
    cfg = AdaptiveWorldModelConfig.from_dict(ae["config"])
    codec, pred = build_codec(cfg), build_predictor(cfg, n_actions)
    try:
        codec.load_state_dict(ae["state_dict"])
        pred.load_state_dict(blobs["predictor"]["state_dict"])
    except RuntimeError as e:
        raise ValueError(f"{folder}: weights do not fit the model ({str(e).splitlines()[0]})") from e
    return cfg, codec.eval(), pred.eval(), state


class PersistenceMixin:
    """``save`` and ``_resume`` of the adaptive world model (they use the attributes its __init__ makes)."""

    def save(self) -> None:
        """Write the checkpoint set (weights, optimisers, counters, last 100 history entries)."""
        blobs = {
            "autoencoder": {
                "model": "adaptive-autoencoder",
                "config": self.cfg.to_dict(),
                "state_dict": self.codec.state_dict(),
                "optimizer": self.ae_opt.state_dict(),
            },
            "history": self.buffer.recent(self.cfg.HISTORY_TO_SAVE),
            "predictor": {
                "model": "adaptive-predictor",
                "state_dict": self.predictor.state_dict(),
                "optimizer": self.pred_opt.state_dict(),
            },
        }
        state = {
            "step": self.step_count,
            "ae_steps": self.ae_steps,
            "pred_steps": self.pred_steps,
            "train_seconds": self.train_seconds,
            "robot": self.cfg.ROBOT_NAME,
            "history": list(self.history),
            "config": self.cfg.to_dict(),
        }
        save_set(self.checkpoint_dir, blobs, state)

    def _resume(self) -> str | None:
        """Load the latest usable checkpoint set if there is one; return 'primary', 'backup' or None."""
        found = load_latest(self.checkpoint_dir, self.log)
        if found is None:
            return None
        state, blobs, which = found
        self.codec.load_state_dict(blobs["autoencoder"]["state_dict"])
        self.ae_opt.load_state_dict(blobs["autoencoder"]["optimizer"])
        self.predictor.load_state_dict(blobs["predictor"]["state_dict"])
        self.pred_opt.load_state_dict(blobs["predictor"]["optimizer"])
        self.step_count, self.ae_steps = state["step"], state["ae_steps"]
        self.pred_steps, self.train_seconds = state["pred_steps"], state["train_seconds"]
        self.history.extend(state["history"])
        self.buffer.restore(blobs["history"])
        self.log(f"resumed at step {self.step_count} from the {which} checkpoint in {self.checkpoint_dir}")
        return which
