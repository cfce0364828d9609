"""The three training stages of chapter 7, shared by train.py and the tests.

1. ``train_world_model``: codec + proprioceptive head + action-conditioned predictor on trajectories.
2. ``pretrain_vlm``: the VLM (ViT + image projection + LM) on questions about the *present* frame, and
   on recorded clips read through a throwaway world projection (questions about their first or last frame).
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
from models import IGNORE, VLM, TheWorld, WorldModel, text_batch, world_model_loss


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
            wm,
            f,
            acts[i[:, None], idx[:, :-1]].to(device),
            prop[i[:, None], idx].to(device),
            latent_weight=cfg.wm_latent_weight,
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


@torch.no_grad()
def clip_latents(wm: WorldModel, traj: dict, device, chunk: int = 1000) -> torch.Tensor:
    """The world model's encoding of every *recorded* trajectory frame: (N, T, Z). These are the
    "video" the VLM learns to read in stage 2 (real frames, never imagined ones)."""
    flat = to_tensor(traj["frames"].reshape(-1, *traj["frames"].shape[2:]))  # (N*T, 3, H, W) uint8
    z = torch.cat([wm.encode(as_float(flat[i : i + chunk], device)) for i in range(0, len(flat), chunk)])
    return z.view(*traj["frames"].shape[:2], -1)


def clip_windows(traj: dict, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows of k + 1 recorded frames whose first and last cells are readable and whose k action words
    all move (no 'stay', like the questions of stage 3): (M,) trajectory and (M,) start indices."""
    readable = ~near_border(traj["proprio"])  # (N, T)
    T = readable.shape[1]
    moving = np.stack([(traj["actions"][:, s : s + k] != 0).all(1) for s in range(T - k)], 1)  # (N, T-k)
    n, s = np.nonzero(readable[:, :-k] & readable[:, k:] & moving)
    return n, s


def pretrain_vlm(vlm: VLM, wm: WorldModel, traj: dict, cfg, device) -> tuple[dict, TheWorld]:
    """Stage 2: train the whole VLM (ViT, image projection, LM) with a throwaway world projection.

    Two kinds of batch, half each:
      - present: "where is the agent ?" (or "... before <actions> ?", whose words must be ignored); with
        probability ``cfg.slot_noise`` the world slot holds 1..k+1 random tokens, else it is empty;
      - clip ("video pre-training"): the world slot holds the world model's encodings of k + 1 *recorded*
        frames (through the throwaway projection), the image is the first of them, and the question is
        about the first ("where is the agent before <actions> ?") or the last ("where will the agent be
        after <actions> ?") frame. The LM thus learns to read positions from world tokens in order,
        as Gemma learned to read image and video tokens; the physics stays in the recording.
    The ViT's patch probe (which patch holds the agent?) trains beside the answers, standing in for the
    vision encoder's own pre-training. Stage 3 throws the projection away and trains a fresh one that
    must deliver *imagined* latents the LM can read. Returns the loss history and the stage-2 TheWorld
    (its projection is the throwaway one).
    """
    frames, cells = present_samples(traj)
    K = cfg.k
    z_all = clip_latents(wm, traj, device)  # (N, T, Z)
    win_n, win_s = clip_windows(traj, K)
    all_frames, prop = to_tensor(traj["frames"]), traj["proprio"]  # (N, T, 3, H, W), (N, T, 2)
    lm_frozen = not any(p.requires_grad for p in vlm.lm.parameters())  # a real LM (Gemma) stays frozen
    pre = TheWorld(vlm, wm, num_world_steps=K, freeze_vision=False, freeze_language=lm_frozen).to(device)
    params = [p for p in pre.parameters() if p.requires_grad]  # the VLM and the throwaway projection
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.vlm_steps, pct_start=0.1)
    rng, hist, t0 = np.random.default_rng(cfg.seed + 2), {"step": [], "loss": []}, time.time()
    bar = tqdm(range(1, cfg.vlm_steps + 1), desc="2/3 VLM (present + recorded clips)", mininterval=2)
    B = cfg.batch_size
    for step in bar:
        if rng.random() < 0.5:  # present questions, world slot empty or noise
            i, drop = rng.integers(0, len(frames), B), torch.zeros(B, dtype=torch.bool)
            kind = "present" if rng.random() < 0.5 else "before"
            qs, ans = questions_for(kind, rng.integers(1, 5, (B, K)), cells[i])
            img, patch_cells = as_float(frames[i], device), cells[i]
            world = None
            if rng.random() < cfg.slot_noise:  # random tokens of a random scale, all-zero ones included
                scale = float(rng.choice([0.0, 0.1, 1.0]))
                world = scale * torch.randn(B, int(rng.integers(1, K + 2)), vlm.lm.dim, device=device)
        else:  # a recorded clip in the world slot; questions about its first or last frame
            j = rng.integers(0, len(win_n), B)
            n, s = win_n[j], win_s[j]
            idx = s[:, None] + np.arange(K + 1)  # (B, K+1) frame indices of each clip
            first, last = cell_of(prop[n, s]), cell_of(prop[n, s + K])
            kinds = rng.choice(["future", "before", "present"], B, p=[0.5, 0.25, 0.25])
            acts = traj["actions"][n[:, None], idx[:, :-1]]  # (B, K) the recorded action words
            qs = [question_text(q, a) for q, a in zip(kinds, acts, strict=True)]
            ans = [answer_text(c) for c in np.where((kinds == "future")[:, None], last, first)]
            img, patch_cells = as_float(all_frames[n, s], device), first
            drop = torch.from_numpy((kinds == "future") & (rng.random(B) < cfg.clip_image_drop))
            img[drop] = 0.0  # no picture: the answer must come from the world slot, not the present
            z = z_all[n[:, None], idx]  # (B, K+1, Z) encodings of the recorded frames
            z = z + cfg.clip_noise * torch.randn_like(z)  # the imagination will not be exact: read robustly
            world = pre.world_tokens(z)  # (B, K+1, D)
        ids, labels = text_batch(vlm.tokenizer, qs, ans)
        patch = torch.from_numpy(patch_cells[:, 0] * GRID + patch_cells[:, 1])  # 8x8 patches = grid cells
        patch[drop] = IGNORE  # a black picture has no agent for the probe to find
        loss = vlm(img, ids, labels, world=world, agent_patch=patch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        _log(bar, hist, step, loss.item(), t0, 50)
    hist["seconds"] = time.time() - t0
    vlm.eval()
    return hist, pre.eval()


def fusion_batch(qa: dict, i: np.ndarray, kind: str, tokenizer, device):
    """One batch of stage-3 questions: frames (B, 3, H, W) float, ids and labels (B, Q), actions (B, K)
    (None for present questions: the world model then imagines standing still)."""
    cells = qa["present"][i] if kind == "present" else qa["future"][i]
    qs, ans = questions_for(kind, qa["actions"][i], cells)
    ids, labels = text_batch(tokenizer, qs, ans)
    actions = torch.from_numpy(qa["actions"][i]).long().to(device) if kind == "future" else None
    return as_float(to_tensor(qa["frames"][i]), device), ids, labels, actions


def train_fusion(fused: TheWorld, qa: dict, cfg, device) -> dict:
    """Stage 3: a share ``cfg.future_share`` of the batches asks about the future (after K action words),
    the rest about the present."""
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
        kind = "future" if rng.random() < cfg.future_share else "present"
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
