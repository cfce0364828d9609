"""The training stages of chapter 7, shared by train.py and the tests.

1. ``train_world_model``: a VAE over 4x4 latent grids + an action-conditioned predictor, trained only to
   reconstruct and predict frames (no labels).
2. ``pretrain_vlm``: the VLM (ViT + image projection + LM) on images and text only: questions about the
   present frame, and future questions asked with the present frame alone. No world slot exists yet.
3. ``train_fusion``: TheWorld on present and future questions; by default only the world projection
   and the temporal embeddings receive gradients (staged unfreezing adds the vision encoder, then the LM).

Shape key: N samples, T frames, B batch, K actions per question, H/W frame side.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from tqdm import tqdm

from data_utils import GRID, MOVES, PointMassRoom, answer_text, cell_of, near_border, question_text
from models import VLM, TheWorld, WorldModel, text_batch, world_model_loss

_ROOM = PointMassRoom()
WORD_STEP = _ROOM.max_step * _ROOM.frame_skip  # how far one action word moves the agent in free space (0.2)
BORDER_WIDTH = 0.03  # the outer walls' thickness (data_utils.BORDER)


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
    """Stage 1. traj: frames (N, T, H, W, 3), actions (N, T-1) (its positions are not used). Batches of
    ``cfg.wm_batch`` windows of ``cfg.wm_window`` frames, ``cfg.wm_steps`` Adam steps."""
    wm = WorldModel().to(device)
    opt = torch.optim.AdamW(wm.parameters(), lr=cfg.wm_lr, weight_decay=0.0)
    frames, acts = to_tensor(traj["frames"]), torch.from_numpy(traj["actions"]).long()
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
        loss, _ = world_model_loss(wm, f, acts[i[:, None], idx[:, :-1]].to(device), beta=cfg.wm_beta)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        _log(bar, hist, step, loss.item(), t0, 50)
    hist["seconds"] = time.time() - t0
    return wm.eval(), hist


def present_samples(traj: dict) -> tuple[torch.Tensor, np.ndarray]:
    """Every trajectory frame whose cell is readable (not within MARGIN of a grid line): frames
    (M, 3, H, W) uint8 and positions (M, 2) (x, y)."""
    pos = traj["proprio"].reshape(-1, 2)
    keep = ~near_border(pos)
    frames = to_tensor(traj["frames"].reshape(-1, *traj["frames"].shape[2:])[keep])
    return frames, pos[keep]


def arrows_end(start: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Where the words point, ignoring the inner wall: start (B, 2) moved by each word's full step,
    held inside the outer border. actions (B, K) -> (B, 2). The "arrows without walls" answer."""
    lo = BORDER_WIDTH + _ROOM.radius  # the closest the disk's centre gets to the outer border
    return np.clip(start + MOVES[actions].sum(1) * WORD_STEP, lo, 1 - lo)


def future_windows(traj: dict, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows of k + 1 recorded frames whose first and last cells are readable and whose k action words
    all move (no 'stay', like the questions of stage 3): (M,) trajectory and (M,) start indices."""
    readable = ~near_border(traj["proprio"])  # (N, T)
    T = readable.shape[1]
    moving = np.stack([(traj["actions"][:, s : s + k] != 0).all(1) for s in range(T - k)], 1)  # (N, T-k)
    n, s = np.nonzero(readable[:, :-k] & readable[:, k:] & moving)
    return n, s


def arrow_questions(pos: np.ndarray, k: int, batch: int, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A batch of future questions answered by the words alone: (B,) indices into ``pos`` (M, 2), (B, K)
    random moving words and (B, 2) the cells they point to (only readable ends are kept)."""
    i = rng.integers(0, len(pos), 4 * batch)
    acts = rng.integers(1, len(MOVES), (4 * batch, k))  # moving words only, as in every future question
    end = arrows_end(pos[i], acts)  # (4B, 2)
    keep = np.flatnonzero(~near_border(end))[:batch]  # ~70 % are readable: 4B draws give B
    return i[keep], acts[keep], cell_of(end[keep])


def pretrain_vlm(vlm: VLM, traj: dict, cfg, device) -> dict:
    """Stage 2: train the whole VLM (ViT, image projection, LM) on images and text only.

    Each batch is, with probability ``cfg.vlm_future_share``, future questions ("where will the agent be
    after <k recorded action words> ?", answered with the cell of the recorded frame k steps later) and
    otherwise present questions ("where is the agent ?"); either way the model sees one picture, the
    present frame. The future questions are answered by the words alone (``arrows_end``: each word one
    full step, only the outer border holds the agent in): the VLM learns what the words mean, not the
    room's walls, as a VLM learns language about motion without having lived in this room. With
    ``cfg.vlm_walls`` they are answered by what happened in recorded trajectories instead, and the VLM
    learns the walls itself. There is no world slot: the LM never sees a world token.
    The ViT's patch probe (which patch holds the agent?) trains beside the answers, standing in for the
    vision encoder's own pre-training. Returns the loss history.
    """
    frames, pos = present_samples(traj)  # (M, 3, H, W) uint8, (M, 2)
    cells, K = cell_of(pos), cfg.k
    win_n, win_s = future_windows(traj, K)
    all_frames, prop = to_tensor(traj["frames"]), traj["proprio"]  # (N, T, 3, H, W), (N, T, 2)
    params = [p for p in vlm.parameters() if p.requires_grad]  # a real LM (Gemma) stays frozen
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.vlm_steps, pct_start=0.1)
    rng, hist, t0 = np.random.default_rng(cfg.seed + 2), {"step": [], "loss": []}, time.time()
    bar = tqdm(range(1, cfg.vlm_steps + 1), desc="2/3 VLM (images and text)", mininterval=2)
    B = cfg.batch_size
    vlm.train()
    for step in bar:
        later, kind = None, rng.random()
        if kind >= cfg.vlm_future_share:  # present questions
            i = rng.integers(0, len(frames), B)
            qs, ans = questions_for("present", np.zeros((B, 0), dtype=np.int64), cells[i])
            img, patch_cells = as_float(frames[i], device), cells[i]
        elif kind < cfg.vlm_future_share * cfg.vlm_clip_share:  # a recording: all its pictures, in order
            j = rng.integers(0, len(win_n), B)
            n, s = win_n[j], win_s[j]
            idx = s[:, None] + np.arange(K + 1)  # (B, K+1) frame indices of each recording
            acts = traj["actions"][n[:, None], idx[:, :-1]]  # (B, K) the recorded words
            qs, ans = questions_for("future", acts, cell_of(prop[n, s + K]))  # what the last picture shows
            img, patch_cells = as_float(all_frames[n, s], device), cell_of(prop[n, s])
            later = as_float(all_frames[n[:, None], idx[:, 1:]], device)  # (B, K, 3, H, W)
        elif not cfg.vlm_walls:  # future questions answered by the words alone
            i, acts, end_cells = arrow_questions(pos, K, B, rng)
            qs, ans = questions_for("future", acts, end_cells)
            img, patch_cells = as_float(frames[i], device), cells[i]
        else:  # the what-if: future questions answered by what happened (walls included)
            j = rng.integers(0, len(win_n), B)
            n, s = win_n[j], win_s[j]
            acts = traj["actions"][n[:, None], s[:, None] + np.arange(K)]  # (B, K) the recorded words
            qs, ans = questions_for("future", acts, cell_of(prop[n, s + K]))
            img, patch_cells = as_float(all_frames[n, s], device), cell_of(prop[n, s])
        ids, labels = text_batch(vlm.tokenizer, qs, ans)
        patch = torch.from_numpy(patch_cells[:, 0] * GRID + patch_cells[:, 1])  # 8x8 patches = grid cells
        gap = torch.from_numpy(
            rng.integers(0, cfg.vlm_max_gap + 1, B)
        )  # (B,) empty positions before the text
        loss = vlm(img, ids, labels, agent_patch=patch, text_gap=gap, later=later)
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


def train_fusion(fused: TheWorld, qa: dict, cfg, device, steps: int, lr: float, name: str, seed: int) -> dict:
    """Stage 3 (or one step of staged unfreezing): ``steps`` AdamW steps at peak learning rate ``lr`` on
    whatever ``fused`` leaves trainable. A share ``cfg.future_share`` of the batches asks about the future
    (after K action words), the rest about the present. Frozen parts stay in eval mode."""
    params = [p for p in fused.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    warm = min(0.45, max(0.1, 2.5 / steps))  # 10 % warm-up; OneCycleLR divides by (warm * steps - 1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps, pct_start=warm)
    rng, hist, t0 = np.random.default_rng(seed), {"step": [], "loss": []}, time.time()
    fused.eval()  # no dropout anywhere; eval mode only matters for what is frozen
    bar = tqdm(range(1, steps + 1), desc=f"3/3 fusion ({name})", mininterval=2)
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
