"""The three training stages of chapter 7, shared by train.py and the tests.

1. ``train_world_model``: codec + proprioceptive head + action-conditioned predictor on trajectories.
2. ``pretrain_vlm``: the VLM (ViT + image projection + LM) on questions about the *present* frame only.
3. ``train_fusion``: TheWorld on present and future questions; by default only the world projection
   and the temporal embeddings receive gradients.

Shape key: N samples, T frames, B batch, K actions per question, H/W frame side.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from tqdm import tqdm

from data_utils import GRID, answer_text, cell_of, near_border, question_text
from models import VLM, TheWorld, WorldModel, text_batch, world_model_loss


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 frames (..., H, W, 3) -> uint8 tensor (..., 3, H, W) (kept as uint8 to save memory)."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(frames, -1, -3)))


def as_float(frames: torch.Tensor, device) -> torch.Tensor:
    """uint8 (..., 3, H, W) -> float in [0, 1] on ``device``."""
    return frames.to(device).float() / 255


def questions_for(kind: str, actions: np.ndarray, cells: np.ndarray) -> tuple[list[str], list[str]]:
    """Question and answer strings for a batch: kind 'present' / 'before' / 'future'; actions (B, K),
    cells (B, 2) the true answers."""
    qs = [question_text(kind, a) for a in actions]
    return qs, [answer_text(c) for c in cells]


def _log(bar, hist: dict, step: int, loss: float, t0: float, every: int) -> None:
    """Record the loss; show it on the tqdm bar every ``every`` steps."""
    hist["step"].append(step)
    hist["loss"].append(loss)
    if step % every == 0 or step == 1:
        bar.set_postfix(
            loss=f"{np.mean(hist['loss'][-every:]):.4f}", ms=f"{1000 * (time.time() - t0) / step:.0f}"
        )


def train_world_model(traj: dict, cfg, device) -> tuple[WorldModel, dict]:
    """Stage 1. traj: frames (N, T, H, W, 3), actions (N, T-1), proprio (N, T, 2). Batches of
    ``cfg.wm_batch`` windows of ``cfg.wm_window`` frames, ``cfg.wm_steps`` Adam steps."""
    wm = WorldModel().to(device)
    opt = torch.optim.AdamW(wm.parameters(), lr=cfg.wm_lr, weight_decay=0.0)
    frames, acts = to_tensor(traj["frames"]), torch.from_numpy(traj["actions"]).long()
    prop = torch.from_numpy(traj["proprio"]).float()
    N, T = acts.shape[0], acts.shape[1] + 1
    W = min(cfg.wm_window, T)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.wm_lr, total_steps=cfg.wm_steps, pct_start=0.1)
    hist, t0, gen = {"step": [], "loss": []}, time.time(), torch.Generator().manual_seed(cfg.seed)
    bar = tqdm(range(1, cfg.wm_steps + 1), desc="1/3 world model", mininterval=2)
    for step in bar:
        i = torch.randint(0, N, (cfg.wm_batch,), generator=gen)
        s = torch.randint(0, T - W + 1, (cfg.wm_batch,), generator=gen)
        idx = s[:, None] + torch.arange(W)  # (B, W) frame indices of each window
        f = as_float(frames[i[:, None], idx], device)  # (B, W, 3, H, W)
        loss, _ = world_model_loss(
            wm, f, acts[i[:, None], idx[:, :-1]].to(device), prop[i[:, None], idx].to(device)
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        _log(bar, hist, step, loss.item(), t0, 50)
    hist["seconds"] = time.time() - t0
    return wm.eval(), hist


def present_samples(traj: dict) -> tuple[torch.Tensor, np.ndarray]:
    """Every trajectory frame whose cell is readable (not within MARGIN of a grid line): frames
    (M, 3, H, W) uint8 and cells (M, 2)."""
    pos = traj["proprio"].reshape(-1, 2)
    keep = ~near_border(pos)
    frames = to_tensor(traj["frames"].reshape(-1, *traj["frames"].shape[2:])[keep])
    return frames, cell_of(pos[keep])


def pretrain_vlm(vlm: VLM, traj: dict, cfg, device) -> dict:
    """Stage 2: train the whole VLM on present questions ("where is the agent ?", and the same question
    followed by 'before <actions>' whose words must be ignored). With probability ``cfg.slot_noise`` the
    world slot holds 1..S+1 random tokens (else it is empty), so the LM learns to read the present from the
    image whatever sits in the slot; the world tokens of stage 3 must then *earn* its attention. The
    ViT's patch probe (which patch holds the agent?) trains beside the answers, standing in for the
    vision encoder's own pre-training."""
    frames, cells = present_samples(traj)
    params = [p for p in vlm.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.vlm_steps, pct_start=0.1)
    rng, hist, t0 = np.random.default_rng(cfg.seed + 2), {"step": [], "loss": []}, time.time()
    bar = tqdm(range(1, cfg.vlm_steps + 1), desc="2/3 VLM on present questions", mininterval=2)
    for step in bar:
        i = rng.integers(0, len(frames), cfg.batch_size)
        kind = "present" if rng.random() < 0.5 else "before"
        qs, ans = questions_for(kind, rng.integers(1, 5, (cfg.batch_size, cfg.k)), cells[i])
        ids, labels = text_batch(vlm.tokenizer, qs, ans)
        world = None
        if rng.random() < cfg.slot_noise:
            world = torch.randn(cfg.batch_size, int(rng.integers(1, cfg.k + 2)), vlm.lm.dim, device=device)
        patch = torch.from_numpy(cells[i, 0] * GRID + cells[i, 1])  # the 8x8 patches are the 4x4 grid cells
        loss = vlm(as_float(frames[i], device), ids, labels, world=world, agent_patch=patch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        _log(bar, hist, step, loss.item(), t0, 50)
    hist["seconds"] = time.time() - t0
    vlm.eval()
    return hist


def fusion_batch(qa: dict, i: np.ndarray, kind: str, tokenizer, device):
    """One batch of stage-3 questions: frames (B, 3, H, W) float, ids and labels (B, Q), actions (B, K)
    (None for present questions: the world model then imagines standing still)."""
    cells = qa["present"][i] if kind == "present" else qa["future"][i]
    qs, ans = questions_for(kind, qa["actions"][i], cells)
    ids, labels = text_batch(tokenizer, qs, ans)
    actions = torch.from_numpy(qa["actions"][i]).long().to(device) if kind == "future" else None
    return as_float(to_tensor(qa["frames"][i]), device), ids, labels, actions


def train_fusion(fused: TheWorld, qa: dict, cfg, device) -> dict:
    """Stage 3: half the batches ask about the present, half about the future (after K action words)."""
    params = [p for p in fused.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.fusion_lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, cfg.fusion_lr, total_steps=cfg.fusion_steps, pct_start=0.1
    )
    rng, hist, t0 = np.random.default_rng(cfg.seed + 3), {"step": [], "loss": []}, time.time()
    fused.vlm.eval()
    fused.world_model.eval()
    bar = tqdm(range(1, cfg.fusion_steps + 1), desc="3/3 fusion (projection)", mininterval=2)
    for step in bar:
        i = rng.integers(0, len(qa["frames"]), cfg.batch_size)
        kind = "present" if rng.random() < 0.5 else "future"
        frames, ids, labels, actions = fusion_batch(qa, i, kind, fused.vlm.tokenizer, device)
        loss = fused(frames, ids, labels, actions)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        _log(bar, hist, step, loss.item(), t0, 50)
    hist["seconds"] = time.time() - t0
    return hist
