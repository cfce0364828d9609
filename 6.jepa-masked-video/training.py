"""The training stages of chapter 6, shared by train.py (and by the tests on tiny settings).

Stage A, ``pretrain``: V-JEPA on clips cut from arm trajectories, the context encoder seeing one scene
and the target encoder the other (domain randomisation); or the ablation without EMA and stop-gradient.
Stage B, ``train_ac``: V-JEPA 2-AC on a frozen encoder's per-frame features of the same trajectories.

Shape key: N trajectories, L frames per trajectory, B batch, T frames per clip, P patch tokens per frame,
D feature dim.
"""

from __future__ import annotations

import distributed as ddp
import numpy as np
import torch
from jepa import ema_update, feature_spread, jepa_loss, make_target, momentum_at
from tqdm import tqdm

from models import ACPredictor, MaskedPredictor, VideoEncoder, ac_losses
from utils import to_float


def build_encoder(cfg: dict) -> VideoEncoder:
    """The encoder described by a config dict (enc_dim, enc_depth, heads, patch)."""
    return VideoEncoder(cfg["enc_dim"], cfg["enc_depth"], cfg["heads"], cfg["patch"])


def build_predictor(cfg: dict) -> MaskedPredictor:
    """The narrow V-JEPA predictor for clips of cfg["frames"] frames."""
    grid = (cfg["frames"] // 2, 64 // cfg["patch"], 64 // cfg["patch"])
    return MaskedPredictor(cfg["enc_dim"], cfg["pred_dim"], cfg["pred_depth"], cfg["heads"], grid)


def init_encoder(cfg: dict) -> VideoEncoder:
    """The encoder exactly as pre-training starts it (same seed): the random-init baseline."""
    torch.manual_seed(cfg["seed"])
    return build_encoder(cfg)


def build_ac(cfg: dict, n_patches: int) -> ACPredictor:
    """The V-JEPA 2-AC predictor described by a config dict (ac_dim, ac_depth, heads, ac_freqs)."""
    return ACPredictor(
        cfg["enc_dim"], n_patches, cfg["ac_dim"], cfg["ac_depth"], cfg["heads"], n_freqs=cfg["ac_freqs"]
    )


def windows(arrays: list, idx: torch.Tensor, length: int, rng: np.random.Generator) -> list:
    """The same random window of ``length`` frames from trajectories ``idx`` of every array (N, L, ...)."""
    start = int(rng.integers(0, arrays[0].shape[1] - length + 1))
    i = idx.numpy()
    return [torch.as_tensor(np.ascontiguousarray(a[i, start : start + length])) for a in arrays]


def pretrain(cfg: dict, data: dict, device, rank: int, world: int, steps: int, ema: bool = True):
    """Train V-JEPA (``ema=True``) or the collapse ablation (``ema=False``: the target is the context
    encoder itself, with gradient) for ``steps`` steps.

    Each step takes a clip of cfg["frames"] frames from B trajectories, once as rendered ("frames") and
    once under another scene ("frames_alt"); which view feeds the context encoder is drawn per step.
    Args:
        cfg: the model/optimiser config dict. data: {"frames", "frames_alt": (N, L, 64, 64, 3) uint8}.
    Returns:
        (target encoder, context encoder, predictor, log) with log = {"loss": [...], "spread": [...]} per
        step; for the ablation both encoders are the trained encoder itself.
    """
    encoder = init_encoder(cfg).to(device)  # both runs start from the same weights
    predictor = build_predictor(cfg).to(device)
    target = make_target(encoder) if ema else None
    params = list(encoder.parameters()) + list(predictor.parameters())
    opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=0.04)
    if ema:  # DDP averages the gradients; the ablation does it by hand (its encoder runs twice per step)
        encoder, predictor = ddp.wrap(encoder, world), ddp.wrap(predictor, world)
    n = len(data["frames"])
    idx = ddp.batches(
        ddp.loader(torch.arange(n), batch=cfg["batch"], seed=cfg["seed"], world=world, rank=rank)
    )
    rng = np.random.default_rng(cfg["seed"] * 100 + rank)  # masks, windows, view order
    log = {"loss": [], "spread": []}
    name = "V-JEPA" if ema else "no-EMA ablation"
    bar = tqdm(range(steps), desc=name, disable=rank != 0, mininterval=2)
    for step in bar:
        lr = cfg["lr"] * min(1.0, (step + 1) / max(1, steps // 10))  # warm-up over 10 %, then cosine
        for group in opt.param_groups:
            group["lr"] = lr * (0.55 + 0.45 * np.cos(np.pi * step / steps))
        views = windows([data["frames"], data["frames_alt"]], next(idx)[0], cfg["frames"], rng)
        if rng.random() < 0.5:
            views = views[::-1]
        x, x_alt = (to_float(v).to(device) for v in views)  # (B, T, 3, H, W) each
        loss, targets = jepa_loss(
            encoder,
            predictor,
            target if ema else encoder,
            x,
            rng,
            stop_grad=ema,
            target_clips=x_alt,
            visible_weight=cfg["visible_weight"],
        )
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
    context = ddp.unwrap(encoder)
    return (target if ema else context), context, ddp.unwrap(predictor), log


@torch.no_grad()
def feature_stats(z: torch.Tensor) -> dict:
    """Mean and std of per-frame features (N, T, P, D) over trajectories and time: (P, D) each.

    Much of a frozen token is the same in every frame (its position embedding); standardising each
    (patch, dim) by these training-set statistics (a fixed affine map of the frozen features) lets the
    L1 losses and the planning energy see the part that changes with the arm."""
    return {"mean": z.mean((0, 1)), "std": z.std((0, 1)) + 1e-4}


@torch.no_grad()
def encode_trajectories(
    encoder: VideoEncoder, frames: np.ndarray, device, stats: dict | None = None, batch: int = 256
) -> torch.Tensor:
    """Frozen per-frame features of trajectories: frames (N, T, 64, 64, 3) uint8 -> (N, T, P, D) on the
    CPU, standardised with ``stats`` (from ``feature_stats``) when given."""
    encoder.eval()
    n, t = frames.shape[:2]
    flat = frames.reshape(n * t, 1, *frames.shape[2:])
    out = [encoder.encode_frames(to_float(flat[i : i + batch]).to(device)) for i in range(0, n * t, batch)]
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


def pad_actions(actions: np.ndarray) -> np.ndarray:
    """Actions (N, L-1, A) (action t leads from frame t to t+1) -> (N, L, A), a zero after the last frame,
    so that frame t's block of tokens holds a_t."""
    return np.concatenate([actions, np.zeros_like(actions[:, :1])], 1)


def train_ac(cfg: dict, z: torch.Tensor, actions, proprio, device, rank: int, world: int, steps: int):
    """Train the action-conditioned predictor on frozen features, on windows of cfg["ac_frames"] frames.

    Args:
        z: (N, L, P, D) standardised features; actions: (N, L-1, 2); proprio: (N, L, 4) arrays.
    Returns:
        (ACPredictor, log) with log = {"teacher": [...], "rollout": [...]} per step.
    """
    torch.manual_seed(cfg["seed"] + 1)
    model = build_ac(cfg, z.shape[2]).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["ac_lr"], weight_decay=0.01)
    net = ddp.wrap(ACLoss(model, cfg["rollout_steps"]), world)  # one DDP forward = all the losses
    arrays = [z.numpy(), pad_actions(np.asarray(actions)), np.asarray(proprio)]
    idx = ddp.batches(
        ddp.loader(torch.arange(len(z)), batch=cfg["ac_batch"], seed=cfg["seed"], world=world, rank=rank)
    )
    rng = np.random.default_rng(cfg["seed"] * 100 + 50 + rank)
    log = {"teacher": [], "rollout": []}
    bar = tqdm(range(steps), desc="V-JEPA 2-AC", disable=rank != 0, mininterval=2)
    for step in bar:
        for group in opt.param_groups:  # warm-up, then cosine decay
            warm = min(1.0, (step + 1) / max(1, steps // 10))
            group["lr"] = cfg["ac_lr"] * warm * 0.5 * (1 + np.cos(np.pi * step / steps))
        zb, ab, sb = (v.to(device) for v in windows(arrays, next(idx)[0], cfg["ac_frames"], rng))
        losses = net(zb, ab, sb)
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        opt.step()
        log["teacher"].append(losses["teacher"].item())
        log["rollout"].append(losses["rollout"].item())
        if step % 10 == 0:
            bar.set_postfix(teacher=f"{log['teacher'][-1]:.4f}", rollout=f"{log['rollout'][-1]:.4f}")
    return model, log
