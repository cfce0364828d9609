"""The training stages train.py runs, one function each: DINO pre-training, the feature predictor and
the pixel decoder.

Shape key: M frames, B batch, V views, T frames per clip, N = 16 patch tokens, D feature dim, K prototypes.
"""

from __future__ import annotations

import copy
import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from types import SimpleNamespace

import numpy as np
import torch
from tqdm import tqdm

from models import (
    DINOHead,
    FeatureDecoder,
    FeaturePredictor,
    ViT,
    dino_loss,
    ema_update,
    ibot_patch_loss,
    random_patch_mask,
    rollout,
    update_center,
)


def cosine(step: int, total: int, start: float, end: float) -> float:
    """A cosine schedule from ``start`` (step 0) to ``end`` (last step)."""
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * step / max(1, total - 1)))


def warmup_cosine_lr(step: int, total: int, peak: float, warmup: int = 20) -> float:
    """Linear warm-up, then cosine decay to 5 % of the peak."""
    return (
        peak * (step + 1) / warmup
        if step < warmup
        else cosine(step - warmup, total - warmup, peak, 0.05 * peak)
    )


def batch_of(frames: torch.Tensor, idx: np.ndarray, device) -> torch.Tensor:
    """uint8 frames (M, 64, 64, 3) at ``idx`` -> float (B, 3, 64, 64) in [0, 1] on ``device``."""
    return frames[torch.from_numpy(idx)].to(device).permute(0, 3, 1, 2).float() / 255.0


def train_dino(cfg, frames: torch.Tensor, frames_alt: torch.Tensor, device) -> tuple[ViT, dict]:
    """Stage 1: DINO self-distillation of a small ViT; returns the frozen *teacher*.

    The two views of an image are two renders of the same arm pose under different nuisance (frames and
    frames_alt: background, tint, distractor), i.e. domain randomisation: what differs between the views
    is exactly what the features must learn to ignore. Two crops of one frame would share its
    background and teach no such invariance.
    Args:
        frames, frames_alt: (M, 64, 64, 3) uint8, the same M poses under two scenes.
    """
    student = ViT(dim=cfg.vit_dim, depth=cfg.vit_depth, heads=4).to(device)
    s_head = DINOHead(cfg.vit_dim, cfg.n_prototypes).to(device)
    s_phead = DINOHead(cfg.vit_dim, cfg.n_prototypes).to(device)  # iBOT's head for patch tokens
    teacher, t_head, t_phead = copy.deepcopy(student), copy.deepcopy(s_head), copy.deepcopy(s_phead)
    for p in [*teacher.parameters(), *t_head.parameters(), *t_phead.parameters()]:
        p.requires_grad_(False)  # the teacher never receives a gradient: same start, then EMA only
    params = [*student.parameters(), *s_head.parameters(), *s_phead.parameters()]
    opt = torch.optim.AdamW(params, lr=cfg.dino_lr, weight_decay=0.04)
    center = torch.zeros(cfg.n_prototypes, device=device)  # (K,)
    p_center = torch.zeros(cfg.n_prototypes, device=device)  # (K,) the same for the patch logits
    gen, rng = torch.Generator().manual_seed(cfg.seed), np.random.default_rng(cfg.seed)
    hist, t0 = {"step": [], "loss": [], "teacher_entropy": [], "mean_entropy": []}, time.time()
    for step in (bar := tqdm(range(cfg.dino_steps), desc="stage 1: DINO pre-training")):
        for g in opt.param_groups:
            g["lr"] = warmup_cosine_lr(step, cfg.dino_steps, cfg.dino_lr)
        idx = rng.integers(0, len(frames), cfg.dino_batch)
        views = torch.stack(
            [batch_of(frames, idx, device), batch_of(frames_alt, idx, device)]
        )  # (2, B, 3, 64, 64)
        b, n = views.shape[1], student.grid**2  # N patches per view (16 with 16-px patches)
        mask = random_patch_mask(2 * b, n, cfg.mask_ratio, gen).to(device)  # (2B, N)
        s_tok = student(views.flatten(0, 1), mask)  # (2B, 1 + N, E): the student sees masked views
        s_out = s_head(s_tok[:, 0]).view(2, b, -1)  # [CLS] -> logits (2, B, K)
        with torch.no_grad():
            t_tok = teacher(views.flatten(0, 1))  # (2B, 1 + N, E): the teacher sees them whole
            t_out = t_head(t_tok[:, 0]).view(2, b, -1)  # (2, B, K)
        loss = dino_loss(s_out, t_out, center, 2, t_teacher=cfg.teacher_temp)  # view A <-> view B
        if cfg.patch_weight:  # iBOT, across views: each patch of A says what the same patch of B holds
            s_patch = s_phead(s_tok[:, 1:].flatten(0, 1)).view(2, b, n, -1)  # (2, B, N, K)
            with torch.no_grad():
                t_patch = t_phead(t_tok[:, 1:].flatten(0, 1)).view(2, b, n, -1).flip(0)  # other view's
            everywhere = torch.ones(2 * b, n, dtype=torch.bool, device=device)  # every patch, seen or hidden
            loss = loss + cfg.patch_weight * ibot_patch_loss(
                s_patch.flatten(0, 1), t_patch.flatten(0, 1), p_center, everywhere, t_teacher=cfg.teacher_temp
            )
            p_center = update_center(p_center, t_patch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 3.0)
        opt.step()
        momentum = cosine(step, cfg.dino_steps, cfg.ema_start, 1.0)  # the teacher slows down to a stop
        ema_update(teacher, student, momentum)
        ema_update(t_head, s_head, momentum)
        ema_update(t_phead, s_phead, momentum)
        center = update_center(center, t_out)
        if step % 10 == 0 or step == cfg.dino_steps - 1:
            p = ((t_out - center) / cfg.teacher_temp).softmax(-1)  # (2, B, K) the teacher's distributions
            entropy = float(-(p * (p + 1e-12).log()).sum(-1).mean())  # log K: uniform collapse
            p_mean = p.mean((0, 1))  # (K,) averaged over frames
            mean_entropy = float(-(p_mean * (p_mean + 1e-12).log()).sum())  # ~0: one-prototype collapse
            hist["step"].append(step)
            hist["loss"].append(loss.item())
            hist["teacher_entropy"].append(entropy)
            hist["mean_entropy"].append(mean_entropy)
            bar.set_postfix(loss=f"{loss.item():.3f}", H=f"{entropy:.2f}", H_mean=f"{mean_entropy:.2f}")
    hist["seconds"] = time.time() - t0
    return teacher.eval(), hist


def train_predictor(
    cfg, z, proprio, actions, device, causal=True, name="dino", finetune=True
) -> tuple[FeaturePredictor, dict, dict]:
    """Stage 2: the feature predictor. First ``cfg.pred_steps`` of teacher forcing, MSE in feature space
    (+ proprio MSE), as DINO-WM trains; then, if ``finetune``, ``cfg.finetune_steps`` more on an
    open-loop rollout loss (stage 2b), so that the predictor also learns from its own errors.

    Args:
        z: (Ntraj, T, N, D) standardised features of every training frame (encoded once).
        proprio: (Ntraj, T, 4); actions: (Ntraj, T-1, 2).
    Returns:
        the model, its loss history, and its state after teacher forcing alone (before stage 2b).
    """
    torch.manual_seed(cfg.seed)
    model = FeaturePredictor(
        z.shape[-1], z.shape[2], cfg.num_hist, cfg.pred_dim, cfg.pred_depth, causal=causal
    )
    model = model.to(device)
    hist = fit_predictor(
        model, cfg, z, proprio, actions, device, cfg.pred_steps, 0, f"stage 2: predictor on {name}"
    )
    teacher_forced = copy.deepcopy(model.state_dict())
    if finetune and cfg.finetune_steps > 0:
        label = f"stage 2b: {name} on its own rollouts"
        more = fit_predictor(
            model, cfg, z, proprio, actions, device, cfg.finetune_steps, cfg.rollout_steps, label
        )
        hist["step"] += [cfg.pred_steps + s for s in more["step"]]  # one curve: the fine-tune continues it
        hist["loss"] += more["loss"]
        hist["seconds"] += more["seconds"]
    return model.eval(), hist, teacher_forced


# Stage 2 trains one predictor per encoder, plus the no-mask ablation: four independent jobs. Each is a
# 64-wide transformer on batches of 32 clips, too small to keep two threads busy (a second torch thread
# barely shortens a step), so on a 2-core machine the second core trains the *next* predictor instead:
# two worker processes with one thread each. Every job seeds itself, so the result does not depend on
# which worker runs it or in what order.

BAR_ROW = 0  # this process's row for its tqdm bar: each worker has its own, so bars do not overwrite


def _start_worker(counter, bar_lock) -> None:
    """Runs once in each worker process: one torch thread, and its own bar row."""
    global BAR_ROW
    torch.set_num_threads(1)
    tqdm.set_lock(bar_lock)  # one lock for every process's bars, so their lines are drawn whole
    with counter.get_lock():
        BAR_ROW = counter.value  # 0, 1, ...: the first worker draws where a single process would
        counter.value += 1


def _predictor_job(cfg, z, proprio, actions, device, causal, name, finetune):
    """One stage-2 job in a worker: train_predictor, returning plain state dicts (what can be pickled)."""
    model, hist, teacher_forced = train_predictor(cfg, z, proprio, actions, device, causal, name, finetune)
    return model.state_dict(), hist, teacher_forced


def train_predictors(cfg, jobs: list[dict], proprio, actions, device, workers: int) -> dict:
    """Train every stage-2 predictor, ``workers`` at a time (1: one after another, in this process).

    Args:
        jobs: dicts with name, z (Ntraj, T, N, D) standardised features, causal, finetune; listed
            longest first, so that the last job to start is a short one.
    Returns:
        {name: (state_dict, loss history, state after teacher forcing alone)}.
    """
    args = [(j["z"], proprio, actions, device, j["causal"], j["name"], j["finetune"]) for j in jobs]
    if workers <= 1 or len(jobs) == 1 or device.type != "cpu":
        return {j["name"]: _predictor_job(cfg, *a) for j, a in zip(jobs, args, strict=True)}
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: safe with torch's thread pools
    cfg = SimpleNamespace(**vars(cfg))  # plain settings: a worker need not import train.py to read them
    counter, bar_lock = ctx.Value("i", 0), ctx.RLock()
    with ProcessPoolExecutor(min(workers, len(jobs)), ctx, _start_worker, (counter, bar_lock)) as pool:
        futures = {j["name"]: pool.submit(_predictor_job, cfg, *a) for j, a in zip(jobs, args, strict=True)}
        return {name: f.result() for name, f in futures.items()}


def fit_predictor(model, cfg, z, proprio, actions, device, n_steps: int, n_roll: int, label: str) -> dict:
    """The predictor's training loop: ``n_steps`` of AdamW (warm-up, then cosine) on random clips.

    With ``n_roll`` = 0 the loss is teacher-forced: one forward pass over ``num_hist`` true frames
    predicts each next frame. With ``n_roll`` > 0 it is the open-loop rollout loss instead: from each
    clip's first frame the predictor imagines ``n_roll`` steps reading its own predictions
    (``cfg.rollout_window`` frames, as the planner does), so errors that compound over the horizon are
    trained against. Its first step is a teacher-forced prediction from one true frame, so no separate
    teacher-forced term is needed, and leaving it out makes a step a third cheaper.
    """
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    rng = np.random.default_rng(cfg.seed + 2 + 2 * (n_roll > 0))  # other clips for the fine-tune
    hist, t0 = {"step": [], "loss": []}, time.time()
    clip = max(cfg.num_hist, n_roll) + 1  # num_hist inputs (each predicts the next frame), or the rollout
    model.train()
    for step in (bar := tqdm(range(n_steps), desc=label, position=BAR_ROW)):
        for g in opt.param_groups:
            g["lr"] = warmup_cosine_lr(step, n_steps, cfg.lr)
        traj = torch.from_numpy(rng.integers(0, len(z), cfg.batch_size))
        start = torch.from_numpy(rng.integers(0, z.shape[1] - clip + 1, cfg.batch_size))
        idx = start[:, None] + torch.arange(clip)  # (B, clip) frame indices
        zc, pc = z[traj[:, None], idx].to(device), proprio[traj[:, None], idx].to(device)  # (B, clip, N, D)
        ac = actions[traj[:, None], idx[:, :-1]].to(device)  # (B, clip - 1, 2)
        if n_roll:  # open loop from the first frame: the model reads its own predictions
            z_roll, p_roll = rollout(model, zc[:, 0], pc[:, 0], ac[:, :n_roll], cfg.rollout_window)
            # z_roll: (B, n_roll, N, D), p_roll: (B, n_roll, 2)
            loss = (z_roll - zc[:, 1 : n_roll + 1]).pow(2).mean() + cfg.proprio_weight * (
                p_roll - pc[:, 1 : n_roll + 1]
            ).pow(2).mean()
            feat_loss = (z_roll[:, 0] - zc[:, 1]).pow(2).mean()  # its first step is teacher-forced: logged
        else:  # teacher forcing: every input is the truth, one pass predicts every next frame
            h = cfg.num_hist
            z_pred, p_pred = model(zc[:, :h], pc[:, :h], ac[:, :h])  # (B, num_hist, N, D), (B, num_hist, 2)
            feat_loss = (z_pred - zc[:, 1 : h + 1]).pow(2).mean()
            loss = feat_loss + cfg.proprio_weight * (p_pred - pc[:, 1 : h + 1]).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 10 == 0 or step == n_steps - 1:
            hist["step"].append(step)
            hist["loss"].append(feat_loss.item())
            ms = (time.time() - t0) / (step + 1) * 1000
            bar.set_postfix(feat_mse=f"{feat_loss.item():.4f}", ms_per_step=f"{ms:.0f}")
    hist["seconds"] = time.time() - t0
    return hist


def train_decoder(cfg, z: torch.Tensor, frames: torch.Tensor, device) -> tuple[FeatureDecoder, dict]:
    """Stage 3: the pixel decoder on stop-gradient features z (M, N, D) of frames (M, 64, 64, 3)."""
    torch.manual_seed(cfg.seed)
    dec = FeatureDecoder(z.shape[-1]).to(device)
    opt = torch.optim.Adam(dec.parameters(), lr=cfg.lr)
    rng, hist, t0 = np.random.default_rng(cfg.seed + 3), {"step": [], "loss": []}, time.time()
    for step in (bar := tqdm(range(cfg.decoder_steps), desc="stage 3: pixel decoder")):
        for g in opt.param_groups:
            g["lr"] = warmup_cosine_lr(step, cfg.decoder_steps, cfg.lr)
        idx = rng.integers(0, len(z), 64)
        loss = (dec(z[torch.from_numpy(idx)].to(device)) - batch_of(frames, idx, device)).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 10 == 0 or step == cfg.decoder_steps - 1:
            hist["step"].append(step)
            hist["loss"].append(loss.item())
            bar.set_postfix(loss=f"{loss.item():.5f}")
    hist["seconds"] = time.time() - t0
    return dec.eval(), hist
