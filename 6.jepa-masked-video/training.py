"""The two training stages of chapter 6, shared by train.py (and by the tests on tiny settings).

Stage A, ``pretrain``: V-JEPA on clips (optionally the ablation without EMA and stop-gradient).
Stage B, ``train_ac``: V-JEPA 2-AC on the frozen encoder's per-frame features of point-mass trajectories.

Shape key: B batch, T frames, P patch tokens per frame, D feature dim.
"""

from __future__ import annotations

import distributed as ddp
import numpy as np
import torch
from jepa import ema_update, feature_spread, jepa_loss, make_target, momentum_at
from tqdm import tqdm

from data_utils import to_float
from models import ACPredictor, MaskedPredictor, VideoEncoder, ac_losses


def build_encoder(cfg: dict) -> VideoEncoder:
    """The encoder described by a config dict (enc_dim, enc_depth, heads)."""
    return VideoEncoder(cfg["enc_dim"], cfg["enc_depth"], cfg["heads"])


def build_ac(cfg: dict, n_patches: int) -> ACPredictor:
    """The V-JEPA 2-AC predictor described by a config dict (ac_dim, ac_depth, heads, ac_freqs)."""
    return ACPredictor(
        cfg["enc_dim"],
        n_patches,
        cfg["ac_dim"],
        cfg["ac_depth"],
        cfg["heads"],
        n_freqs=cfg["ac_freqs"],
    )


def pretrain(cfg: dict, clips: torch.Tensor, device, rank: int, world: int, steps: int, ema: bool = True):
    """Train V-JEPA (``ema=True``) or the collapse ablation (``ema=False``: the target is the context
    encoder itself, with gradient) for ``steps`` steps.

    Args:
        cfg: the model/optimiser config dict. clips: (N, T, 64, 64, 3) uint8.
    Returns:
        (target encoder, predictor, log) with log = {"loss": [...], "spread": [...]} per step; for the
        ablation the "target encoder" is the trained encoder itself.
    """
    torch.manual_seed(cfg["seed"])  # both runs start from the same weights
    encoder = build_encoder(cfg).to(device)
    predictor = MaskedPredictor(cfg["enc_dim"], cfg["pred_dim"], cfg["pred_depth"], cfg["heads"]).to(device)
    target = make_target(encoder) if ema else None
    params = list(encoder.parameters()) + list(predictor.parameters())
    opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=0.04)
    if ema:  # DDP averages the gradients; the ablation does it by hand (its encoder runs twice per step)
        encoder, predictor = ddp.wrap(encoder, world), ddp.wrap(predictor, world)
    data = ddp.batches(ddp.loader(clips, batch=cfg["batch"], seed=cfg["seed"], world=world, rank=rank))
    rng = np.random.default_rng(cfg["seed"] * 100 + rank)  # the masks
    log = {"loss": [], "spread": []}
    name = "V-JEPA" if ema else "no-EMA ablation"
    bar = tqdm(range(steps), desc=name, disable=rank != 0, mininterval=2)
    for step in bar:
        lr = cfg["lr"] * min(1.0, (step + 1) / max(1, steps // 10))  # linear warm-up over 10 %
        for group in opt.param_groups:
            group["lr"] = lr
        x = to_float(next(data)[0]).to(device)  # (B, T, 3, H, W)
        loss, targets = jepa_loss(encoder, predictor, target if ema else encoder, x, rng, stop_grad=ema)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if not ema:
            ddp.average_gradients(params, world)
        opt.step()
        if ema:
            ema_update(target, ddp.unwrap(encoder), momentum_at(step, steps, cfg["ema_start"]))
        log["loss"].append(loss.item())
        log["spread"].append(feature_spread(targets))
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}", spread=f"{log['spread'][-1]:.3f}")
    return (target if ema else ddp.unwrap(encoder)), ddp.unwrap(predictor), log


@torch.no_grad()
def feature_stats(z: torch.Tensor) -> dict:
    """Mean and std of per-frame features (N, T, P, D) over trajectories and time: (P, D) each.

    Most of a frozen token is the same in every frame (its position embedding, the empty background);
    the agent changes a small part. Standardising each (patch, dim) by these training-set statistics
    (a fixed affine map of the frozen features) lets the L1 losses and the planning energy see that part."""
    return {"mean": z.mean((0, 1)), "std": z.std((0, 1)) + 1e-4}


@torch.no_grad()
def fit_readout(tokens: torch.Tensor, proprio, ridge: float = 1.0) -> dict:
    """A linear readout of the agent's (x, y) from a frame's frozen tokens, by ridge regression.

    The goal is an image; the planner needs to know where it puts the agent. The recorded trajectories
    carry the agent's position (proprioception), so we fit (x, y) = ((z - mean) / std) W + b in closed
    form, in the dual (fewer frames than features): W = X^T (X X^T + ridge I)^-1 (Y - mean Y).
    A pilot: from the full 8x8 token grid the held-out error is ~0.005 arena (0.3 px), from the 4x4
    pooled grid ~0.02: the position is in the features, even where the L1 distance does not show it.

    Args: tokens (N, T, P, D) per-frame tokens; proprio (N, T, 2).
    Returns: {"mean", "std": (P*D,), "weight": (P*D, 2), "bias": (2,)}."""
    x = tokens.flatten(2).flatten(0, 1).double()  # (N*T, P*D)
    y = torch.as_tensor(proprio).reshape(-1, 2).double()  # (N*T, 2)
    mean, std, bias = x.mean(0), x.std(0) + 1e-4, y.mean(0)
    x = (x - mean) / std
    gram = x @ x.T + ridge * torch.eye(len(x), dtype=x.dtype)  # (N*T, N*T)
    weight = x.T @ torch.linalg.solve(gram, y - bias)  # (P*D, 2)
    return {"mean": mean.float(), "std": std.float(), "weight": weight.float(), "bias": bias.float()}


def read_position(readout: dict, tokens: torch.Tensor) -> torch.Tensor:
    """Apply ``fit_readout``'s map: tokens (..., P, D) -> agent (x, y) (..., 2)."""
    x = (tokens.flatten(-2) - readout["mean"].to(tokens)) / readout["std"].to(tokens)
    return x @ readout["weight"].to(tokens) + readout["bias"].to(tokens)


def encode_trajectories(
    encoder: VideoEncoder,
    frames: np.ndarray,
    device,
    stats: dict | None = None,
    batch: int = 256,
    pool: int = 2,
) -> torch.Tensor:
    """Frozen per-frame features of trajectories: frames (N, T, 64, 64, 3) uint8 -> (N, T, P, D) on the
    CPU (P = (8 / pool)^2), standardised with ``stats`` (from ``feature_stats``) when given."""
    encoder.eval()
    n, t = frames.shape[:2]
    flat = frames.reshape(n * t, 1, *frames.shape[2:])
    out = [
        encoder.encode_frames(to_float(flat[i : i + batch]).to(device), pool) for i in range(0, n * t, batch)
    ]
    z = torch.cat(out).reshape(n, t, *out[0].shape[2:]).cpu()
    return z if stats is None else (z - stats["mean"]) / stats["std"]


class ACLoss(torch.nn.Module):
    """The predictor and its losses as one module, so that DDP sees a single forward per step (the
    rollout calls the predictor several times, which DDP's gradient hooks do not allow across calls)."""

    def __init__(self, model: ACPredictor, rollout_steps: int):
        super().__init__()
        self.model, self.rollout_steps = model, rollout_steps

    def forward(self, z, actions, proprio) -> dict:
        """See ``ac_losses``."""
        return ac_losses(self.model, z, actions, proprio, self.rollout_steps)


def train_ac(cfg: dict, z: torch.Tensor, actions, proprio, device, rank: int, world: int, steps: int):
    """Train the action-conditioned predictor on frozen features.

    Args:
        z: (N, T, P, D) features; actions, proprio: (N, T, 2) float32 arrays.
    Returns:
        (ACPredictor, log) with log = {"teacher": [...], "rollout": [...]} per step.
    """
    torch.manual_seed(cfg["seed"] + 1)
    model = build_ac(cfg, z.shape[2]).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["ac_lr"], weight_decay=0.01)
    net = ddp.wrap(ACLoss(model, cfg["rollout_steps"]), world)  # one DDP forward = all the losses
    a, s = torch.as_tensor(actions), torch.as_tensor(proprio)
    data = ddp.batches(ddp.loader(z, a, s, batch=cfg["ac_batch"], seed=cfg["seed"], world=world, rank=rank))
    log = {"teacher": [], "rollout": []}
    bar = tqdm(range(steps), desc="V-JEPA 2-AC", disable=rank != 0, mininterval=2)
    for step in bar:
        for group in opt.param_groups:  # warm-up, then cosine decay
            warm = min(1.0, (step + 1) / max(1, steps // 10))
            group["lr"] = cfg["ac_lr"] * warm * 0.5 * (1 + np.cos(np.pi * step / steps))
        zb, ab, sb = (v.to(device) for v in next(data))
        losses = net(zb, ab, sb)
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        opt.step()
        log["teacher"].append(losses["teacher"].item())
        log["rollout"].append(losses["rollout"].item())
        if step % 10 == 0:
            bar.set_postfix(teacher=f"{log['teacher'][-1]:.4f}", rollout=f"{log['rollout'][-1]:.4f}")
    return model, log
