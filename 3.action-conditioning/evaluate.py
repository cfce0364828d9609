"""Helpers shared by validate.py and play.py: load the trained models, encode, dream, decode, measure.

Shape key: B batch, H horizon, N tokens per frame (256 latent cells), P values per token (4),
K actions compared.
"""

from __future__ import annotations

import numpy as np
import torch

from data_utils import N_ACTIONS, ToroidalDot, displacement, locate_object, make_env
from models import ActionDynamics, FSQAutoencoder, latents_to_tokens, rollout, tokens_to_latents
from utils import UserError

ACTION_KIND = {"dot": "discrete", "wall": "continuous"}
MAIN = "film"  # the conditioning the targets are measured on and play.py drives (see the README)
FAN = 8  # directions in the point-mass counterfactual fan


def load_models(ckpt: dict, device) -> tuple[FSQAutoencoder, dict]:
    """Checkpoint dict -> (codec, {"world/name": ActionDynamics}), all in eval mode; name is a method, or
    "film_cmp" for the FiLM model of the equal-steps comparison ("film" is the main, longer-trained one)."""
    cfg = ckpt["config"]
    try:
        levels = tuple(cfg["levels"])
        codec = FSQAutoencoder(levels, ch=cfg["codec_ch"])
        codec.load_state_dict(ckpt["codec"])
        models = {}
        for key, state in ckpt["dynamics"].items():
            world, name = key.split("/")
            method = name.removesuffix(
                "_cmp"
            )  # "film_cmp": the comparison's FiLM, trained as long as the rest
            spec = cfg.get("actions", {}).get(world, {"kind": ACTION_KIND.get(world)})  # older: by world
            m = ActionDynamics(
                method, spec["kind"], spec.get("n_actions", N_ACTIONS), spec.get("action_dim", 2),
                dim=cfg["dim"], depth=cfg["depth"], max_frames=cfg["context"], head=cfg["head"],
                levels=levels,
            )  # fmt: skip
            m.load_state_dict(state)
            models[key] = m.to(device).eval()
    except (KeyError, RuntimeError, ValueError) as e:
        raise UserError(
            f"checkpoint does not match this chapter's models ({type(e).__name__}): re-run train.py"
        ) from e
    return codec.to(device).eval(), models


@torch.no_grad()
def encode(codec: FSQAutoencoder, frames: np.ndarray, device) -> torch.Tensor:
    """uint8 frames (B, T, 64, 64, 3) -> tokens (B, T, N, P)."""
    b, t = frames.shape[:2]
    x = torch.from_numpy(frames.reshape(b * t, 64, 64, 3)).permute(0, 3, 1, 2).to(device).float() / 255.0
    z = torch.cat([codec.encode(x[i : i + 500]) for i in range(0, len(x), 500)])
    return latents_to_tokens(z.view(b, t, 4, 16, 16))


@torch.no_grad()
def decode(codec: FSQAutoencoder, tok: torch.Tensor) -> np.ndarray:
    """Tokens (B, T, N, P) -> frames (B, T, 64, 64, 3) float in [0, 1]."""
    b, t = tok.shape[:2]
    frames = codec.decode(tokens_to_latents(tok).flatten(0, 1)).clamp(0, 1)  # (B*T, 3, 64, 64)
    return frames.permute(0, 2, 3, 1).reshape(b, t, 64, 64, 3).cpu().numpy()


@torch.no_grad()
def dream(model: ActionDynamics, codec, start, actions, snap=True, steps=None) -> np.ndarray:
    """Start tokens (B, N, P) + actions (B, H[, A]) -> decoded open-loop frames (B, H, 64, 64, 3).
    ``snap`` (regression head only): put each prediction back on the FSQ grid before feeding it back.
    ``steps``: a list of step indices in [0, H) to decode (B, len(steps), 64, 64, 3); default all."""
    tok = rollout(model, start, actions, snap)  # (B, H, N, P)
    return decode(codec, tok if steps is None else tok[:, steps])


def action_set(world: str) -> torch.Tensor:
    """Counterfactual actions: the dot's 5 actions (5,) int64, or a fan of 8 unit directions (8, 2)."""
    if world == "dot":
        return torch.arange(N_ACTIONS)
    angle = torch.arange(FAN) * (2 * np.pi / FAN)
    return torch.stack([torch.cos(angle), torch.sin(angle)], dim=1).float()  # length 1: a full step


def simulate_from(world: str, pos: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth from the simulator: start at pixel position ``pos`` (2,), apply ``actions`` (H[, A]).

    Returns: frames (H, 64, 64, 3) uint8 and positions (H, 2) in pixels.
    """
    env = make_env(world)
    env.reset(options={"pos": pos})  # the object where the data had it; no random draw
    frames, positions = [], []
    for a in actions:
        frame, _, _, _, info = env.step(int(a) if world == "dot" else a)
        frames.append(frame)
        positions.append(info["pos"])
    return np.stack(frames), np.stack(positions)


def direction_accuracy(
    world: str, start_pos: np.ndarray, pred_frames: np.ndarray, acts: torch.Tensor
) -> tuple[float, float, int]:
    """Does the imagined one-step displacement point the way the action says?

    Args:
        start_pos: (B, 2) true start positions (px). pred_frames: (B, K, 64, 64, 3) one-step predictions
            under each of the K actions of ``acts`` (action_set(world)).
    Dot: a move counts when the dot moved > 1 px along the action's axis and direction and < 1 px across
    it; "stay" counts when it moved < 1 px. Point mass: the predicted displacement must be within 45
    degrees of the true one (from the simulator); moves blocked by a wall (< 1.5 px) are left out.
    A prediction in which the object vanished fails the test (the tracker has no position for it).
    Returns:
        (accuracy, blocked_stays, n_blocked). Point mass only (NaN and 0 for the dot): of the pushes the
        simulator blocks (a wall stops the disk: it moves < 1 px), the share whose dream also moves the
        disk < 1 px and keeps it visible, and how many such pushes there were.
    """
    b, k = pred_frames.shape[:2]
    pos, found = locate_object(pred_frames.reshape(b * k, 64, 64, 3), world)
    moved = displacement(np.repeat(start_pos, k, axis=0), pos, world).reshape(b, k, 2)  # (B, K, 2)
    found = found.reshape(b, k)
    if world == "dot":
        want = ToroidalDot.MOVES[acts.numpy()].astype(np.float32)  # (K, 2) unit moves
        along = (moved * want).sum(-1)  # (B, K)
        across = np.abs(moved * want[:, ::-1]).sum(-1)
        ok = np.where(want.any(-1), (along > 1.0) & (across < 1.0), np.linalg.norm(moved, axis=-1) < 1.0)
        return float((ok & found).mean()), float("nan"), 0
    true = np.stack([[simulate_from(world, p, a[None].numpy())[1][0] - p for a in acts] for p in start_pos])
    dist, dist_pred = np.linalg.norm(true, axis=-1), np.linalg.norm(moved, axis=-1)  # (B, K) px
    valid = dist > 1.5  # (B, K)
    cos = (moved * true).sum(-1) / (dist_pred * dist + 1e-8)
    acc = float(((cos > np.cos(np.pi / 4)) & found)[valid].mean())
    blocked = dist < 1.0  # (B, K): the wall stops the push (a free push moves the disk 3.2 px)
    stays = (dist_pred < 1.0) & found  # the dream keeps the disk where it was
    return acc, float(stays[blocked].mean()) if blocked.any() else float("nan"), int(blocked.sum())
