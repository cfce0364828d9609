"""Evaluation helpers for validate.py: rebuild the models from a checkpoint, answer questions in batches,
and measure the world model's own predictions.

Shape key: N held-out samples, B batch, K actions per question, G grid positions, C latent channels.
"""

from __future__ import annotations

import copy

import numpy as np
import stages
import torch

from data_utils import MOVES, PointMassRoom, answer_text, cell_of, question_text
from models import VLM, LMUnavailable, TheWorld, WorldModel, agent_position, load_lm
from utils import UserError


def build_models(ckpt: dict, device) -> tuple[TheWorld, TheWorld]:
    """(trained TheWorld, the same with the *untrained* projection it started from) from a checkpoint.

    Both wrap the pre-trained VLM and the world model, so they differ only in the projection, unless
    staged unfreezing also trained the vision encoder or the LM: then the trained TheWorld gets its own
    copy of the VLM with those weights, and the VLM alone stays the pre-trained one."""
    cfg = ckpt["config"]
    try:
        lm, tokenizer = load_lm(cfg["lm"])
    except LMUnavailable as e:
        raise UserError(str(e)) from None
    vlm, wm = VLM(lm, tokenizer), WorldModel()
    try:
        missing, unexpected = vlm.load_state_dict(ckpt["vlm"], strict=False)
        wm.load_state_dict(ckpt["world_model"])
    except (RuntimeError, KeyError) as e:
        raise UserError(
            f"the checkpoint's weights do not fit this chapter's models ({type(e).__name__})"
        ) from None
    if unexpected or [m for m in missing if not (cfg["lm"] != "small" and m.startswith("lm."))]:
        raise UserError("the checkpoint's VLM weights do not fit this chapter's models: re-run train.py")
    vlm, wm = vlm.to(device).eval(), wm.to(device).eval()
    torch.manual_seed(cfg["seed"] + 4)  # the same initial projection as train.py's
    thaw = set(ckpt.get("unfrozen", [p for p in cfg["unfreeze"].split(",") if p]))
    flags = {f"freeze_{p}": p not in thaw for p in ("vision", "language", "world")}
    random_proj = TheWorld(vlm, wm, num_world_steps=cfg["k"], **flags).to(device).eval()
    own = (copy.deepcopy(vlm), copy.deepcopy(wm)) if thaw else (vlm, wm)  # trained weights of their own
    fused = TheWorld(*own, num_world_steps=cfg["k"], **flags).to(device).eval()
    try:
        fused.load_trainable({k: v.to(device) for k, v in ckpt["fusion"].items()})
    except ValueError as e:
        raise UserError(f"{e}: re-run train.py") from None
    return fused, random_proj


def answer_all(model: TheWorld, qa: dict, kind: str, mode: str, steps: int, batch: int, device) -> list[str]:
    """The model's answers to every held-out question of one kind ('present' or 'future').

    mode: 'on' (world tokens), 'zero' (world tokens zeroed) or 'off' (the VLM alone, empty slot).
    Questions are grouped by token length so each batch can be decoded together.
    """
    qs = [question_text(kind, a) for a in qa["actions"]]
    lengths = np.array([len(model.vlm.tokenizer.encode(q)) for q in qs])
    answers = [""] * len(qs)
    for length in np.unique(lengths):
        idx = np.flatnonzero(lengths == length)
        for s in range(0, len(idx), batch):
            i = idx[s : s + batch]
            frames = stages.as_float(stages.to_tensor(qa["frames"][i]), device)
            actions = torch.from_numpy(qa["actions"][i]).long().to(device) if kind == "future" else None
            out = model.generate(frames, [qs[j] for j in i], actions, num_world_steps=steps, mode=mode)
            for j, a in zip(i, out, strict=True):
                answers[j] = a
    return answers


def accuracy(answers: list[str], cells: np.ndarray, subset=None) -> float:
    """Fraction of answers that name the right cell exactly ('row1 col2')."""
    right = np.array([a == answer_text(c) for a, c in zip(answers, cells, strict=True)])
    return float(right[subset].mean() if subset is not None else right.mean())


@torch.no_grad()
def world_model_errors(wm: WorldModel, qa: dict, device) -> dict:
    """The world model alone: where its *decoded* imagination puts the agent (the orange centroid of the
    decoded frame, arena units) after the K action words, and the cell that implies, next to
    copy-the-present and straight-line (no walls) baselines. No position head is involved."""
    frames = stages.as_float(stages.to_tensor(qa["frames"]), device)
    z = wm.rollout(frames, torch.from_numpy(qa["actions"]).long().to(device))  # (N, K+1, G, C)
    first = agent_position(wm.decode(z[:, 0]).clamp(0, 1)).cpu().numpy()  # (N, 2)
    last = agent_position(wm.decode(z[:, -1]).clamp(0, 1)).cpu().numpy()  # (N, 2)
    line = np.clip(qa["start"] + MOVES[qa["actions"]].sum(1) * 0.2, 0.08, 0.92)  # ignores the inner wall
    return {
        "world_model/present_pos_err": float(np.linalg.norm(first - qa["start"], axis=-1).mean()),
        "world_model/future_pos_err": float(np.linalg.norm(last - qa["end"], axis=-1).mean()),
        "world_model/future_cell_acc": float((cell_of(last) == qa["future"]).all(-1).mean()),
        "baseline/future_pos_err/copy_present": float(
            np.linalg.norm(qa["start"] - qa["end"], axis=-1).mean()
        ),
        "baseline/future_cell_acc/no_walls_physics": float((cell_of(line) == qa["future"]).all(-1).mean()),
        "baseline/future_cell_acc/copy_present": float((qa["present"] == qa["future"]).all(-1).mean()),
        "baseline/present_pos_err/arena_centre": float(np.linalg.norm(qa["start"] - 0.5, axis=-1).mean()),
        "baseline/future_cell_acc_wall_stopped/copy_present": float(
            (qa["present"] == qa["future"]).all(-1)[qa["blocked"]].mean()
        ),
    }


def true_frame(pos) -> np.ndarray:
    """The frame (H, W, 3) uint8 with the agent at ``pos``: the ground truth beside an imagined frame."""
    frame, _ = PointMassRoom().reset(options={"pos": pos})
    return frame
