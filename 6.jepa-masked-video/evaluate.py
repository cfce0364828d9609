"""What validate.py measures: probes, feature spread, masked-prediction loss, AC rollouts, goal reaching.

Shape key: N clips, B batch (episodes), S CEM samples, T frames, P patch tokens per frame, D feature dim,
H horizon, A action dims.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from jepa import feature_spread, jepa_loss
from training import build_ac, build_encoder, build_predictor, encode_trajectories, init_encoder

from data_utils import WORLD, ArmReachEnv, end_effector, render_many, step_joints
from models import AttentiveProbe, cem
from utils import UserError, to_float

SUCCESS_RADIUS = 0.06  # frame units (3.8 px), as in chapter 5: the end-effector must end this close


def load_models(ckpt: dict, device) -> dict:
    """Rebuild every network of a checkpoint (eval mode), plus the random-init encoder (step 0 weights).

    Returns {"encoder", "context", "ablation", "init", "predictor", "ac": {"jepa", "init"}, "z_stats"}."""
    if ckpt.get("world") != WORLD:
        raise UserError(f"the checkpoint was not trained on the {WORLD!r} world; re-run `uv run train.py`")
    cfg = ckpt["config"]
    try:
        models = {"init": init_encoder(cfg)}  # the same draw as train.py's: the encoder at step 0
        for name, key in (
            ("encoder", "encoder"),
            ("context", "context_encoder"),
            ("ablation", "ablation_encoder"),
        ):
            models[name] = build_encoder(cfg)
            models[name].load_state_dict(ckpt[key])
        models["predictor"] = build_predictor(cfg)
        models["predictor"].load_state_dict(ckpt["predictor"])
        models = {k: m.to(device).eval() for k, m in models.items()}
        models["ac"] = {}
        for name, state in ckpt["ac"].items():
            models["ac"][name] = build_ac(cfg, cfg["n_patches"])
            models["ac"][name].load_state_dict(state)
            models["ac"][name].to(device).eval()
    except (KeyError, RuntimeError) as e:
        raise UserError(f"the checkpoint does not match this chapter's models ({type(e).__name__})") from None
    return models | {"z_stats": ckpt["z_stats"]}


def motion_labels(q: np.ndarray) -> np.ndarray:
    """The probe's label: which way the shoulder turns in the first and in the second half of a clip.

    q: (N, T, 2) joint angles -> (N,) in 0..3 = 2 * [first half turns +] + [second half turns +]. One frame
    cannot tell it, nor can two: it needs the motion at both ends of the clip. The nuisance does not
    change it."""
    dq = np.diff(q[..., 0], axis=1)  # (N, T-1) shoulder steps
    dq = (dq + np.pi) % (2 * np.pi) - np.pi  # the shoulder wraps at +-pi
    half = q.shape[1] // 2
    first, second = dq[:, : half - 1].sum(1), dq[:, half:].sum(1)  # frames 0..half-1 and half..T-1
    return (2 * (first > 0) + (second > 0)).astype(np.int64)


@torch.no_grad()
def clip_features(encoder, frames: np.ndarray, device, batch: int = 64) -> torch.Tensor:
    """Frozen tokens of clips: (N, T, 64, 64, 3) uint8 -> (N, tokens, D) on the CPU."""
    return torch.cat(
        [encoder(to_float(frames[i : i + batch]).to(device)).cpu() for i in range(0, len(frames), batch)]
    )


def probe_accuracy(train_x, train_y, test_x, test_y, n_classes: int, steps: int, seed: int) -> float:
    """Train an attentive probe on frozen tokens (N, tokens, D) and labels (N,); return test accuracy.

    The tokens are first standardised per (token, dim) with the training set's mean and std: much of a
    frozen token is the same in every clip (its position embedding) and would drown the rest."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-4  # (N_tokens, D): the probe's fixed input norm
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std  # (MAE's linear probe uses a BatchNorm)
    torch.manual_seed(seed)
    probe = AttentiveProbe(train_x.shape[-1], n_classes)
    opt = torch.optim.AdamW(probe.parameters(), lr=2e-3, weight_decay=0.05)
    gen = torch.Generator().manual_seed(seed)
    y = torch.as_tensor(train_y)
    for _ in range(steps):
        idx = torch.randint(0, len(train_x), (64,), generator=gen)
        loss = F.cross_entropy(probe(train_x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = probe(test_x).argmax(1)
    return (pred == torch.as_tensor(test_y)).float().mean().item()


@torch.no_grad()
def spread_and_loss(models: dict, frames: np.ndarray, frames_alt: np.ndarray, device, seed: int) -> dict:
    """Held-out collapse monitor of the trained, ablation and random-init encoders, and the masked loss:
    the saved context encoder and predictor against the EMA target's features of the other scene (as in
    training), and the same with the EMA target standing in for the context encoder (for comparison)."""
    x, x_alt = to_float(frames).to(device), to_float(frames_alt).to(device)  # (B, T, 3, H, W)
    out = {}
    for name in ("encoder", "ablation", "init"):
        out[f"spread/{name}"] = feature_spread(F.layer_norm(models[name](x), (models[name].dim,)))
    for key, ctx in (("masked_loss", "context"), ("masked_loss/ema_as_context", "encoder")):
        rng = np.random.default_rng(seed)  # the same masks for both
        losses = [
            jepa_loss(models[ctx], models["predictor"], models["encoder"], x, rng, target_clips=x_alt)[0]
            for _ in range(4)
        ]
        out[key] = float(torch.stack(losses).mean())
    return out


@torch.no_grad()
def rollout_errors(ac, z, actions, proprio, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """L1 feature error of open-loop rollouts (window 1, as planned) at horizons 1..H and of copy-last,
    over every start frame. z: (N, T, P, D); actions: (N, T-1, A); proprio: (N, T, S). Returns (H,), (H,)."""
    model, copy = np.zeros(horizon), np.zeros(horizon)
    starts = range(z.shape[1] - horizon)
    for s in starts:
        pred, _ = ac.rollout(z[:, s], proprio[:, s], actions[:, s : s + horizon], window=1)  # (N, H, P, D)
        truth = z[:, s + 1 : s + 1 + horizon]
        model += (pred - truth).abs().mean((0, 2, 3)).cpu().numpy() / len(starts)
        copy += (z[:, s : s + 1] - truth).abs().mean((0, 2, 3)).cpu().numpy() / len(starts)
    return model, copy


def energy_cost(ac, z_now, p_now, z_goal, chunk: int = 1024):
    """The planner's energy, from features alone: action samples (B, S, H, A) -> (B, S).

    Imagine each sequence with the 2-AC predictor from the current frame's features z_now (B, P, D) and
    proprioception p_now (B, 4); the energy is the L1 distance between the imagined features and the goal
    image's z_goal (B, P, D), summed over the horizon (a plan that gets there early and stays wins).
    No goal proprioception, no position read-out: the goal is only an image."""

    def cost(samples: torch.Tensor) -> torch.Tensor:
        b, s = samples.shape[:2]
        z0, p0 = z_now.repeat_interleave(s, 0), p_now.repeat_interleave(s, 0)  # (B*S, P, D), (B*S, 4)
        zg, acts = z_goal.repeat_interleave(s, 0), samples.flatten(0, 1)  # (B*S, P, D), (B*S, H, A)
        out = []
        for i in range(0, b * s, chunk):  # in chunks: a few MB at a time
            c = slice(i, i + chunk)
            zs, _ = ac.rollout(z0[c], p0[c], acts[c], window=1)  # (chunk, H, P, D)
            out.append((zs - zg[c, None]).abs().mean(dim=(2, 3)).sum(1))
        return torch.cat(out).view(b, s)

    return cost


def true_joints(q_now: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """The true arm dynamics over a horizon: q_now (B, 2), actions (B, S, H, 2) -> joints (B, S, H, 2)."""
    q, out = np.broadcast_to(q_now[:, None], actions.shape[:2] + (2,)), []  # q: (B, S, 2)
    for h in range(actions.shape[2]):
        q = step_joints(q, actions[:, :, h])
        out.append(q)
    return np.stack(out, 2)


def rendered_energy(encode, q_now: np.ndarray, scenes: list, z_goal: torch.Tensor):
    """The features' ceiling: ``energy_cost`` with the true simulator in place of the 2-AC predictor.

    Each candidate is played out by the true arm dynamics, every imagined frame rendered under the
    episode's own scene (its distractor held where it is now) and encoded; what is left of the error is
    the energy's own. encode: (M, 64, 64, 3) uint8 -> (M, P, D) standardised features; q_now: (B, 2);
    scenes: B Nuisance; z_goal: (B, P, D). Samples (B, S, H, A) -> (B, S)."""

    def cost(samples: torch.Tensor) -> torch.Tensor:
        qs = true_joints(q_now, samples.cpu().numpy())  # (B, S, H, 2)
        total = torch.zeros(qs.shape[:2], device=samples.device)
        for h in range(qs.shape[2]):
            q = qs[:, :, h]  # (B, S, 2)
            frames = np.concatenate([render_many(q_b, sc) for q_b, sc in zip(q, scenes, strict=True)])
            z = encode(frames).view(*qs.shape[:2], *z_goal.shape[1:])  # (B, S, P, D)
            total += (z - z_goal[:, None]).abs().mean(dim=(2, 3))  # L1, summed over the horizon
        return total

    return cost


def oracle_cost(q_now: np.ndarray, ee_goal: np.ndarray):
    """The upper bound: the true arm dynamics and the true end-effector distance to the goal, summed
    over the horizon. q_now: (B, 2) joint angles; ee_goal: (B, 2). Samples (B, S, H, 2) -> (B, S)."""

    def cost(samples: torch.Tensor) -> torch.Tensor:
        qs = true_joints(q_now, samples.cpu().numpy())  # (B, S, H, 2)
        dist = np.linalg.norm(end_effector(qs) - ee_goal[:, None, None], axis=-1)  # (B, S, H)
        return torch.from_numpy(dist.sum(2)).float().to(samples.device)  # summed over the horizon

    return cost


@torch.no_grad()
def goal_reaching(encoder, ac, stats, tasks: list, cfg, device, seed: int = 0) -> dict:
    """CEM-MPC from a start pose to a goal *image*, every task planned together in one batch (chapter 5's
    loop). Every ``replan_every`` steps: encode the current frame, plan ``horizon`` actions with CEM on the
    energy, execute the first ``replan_every`` in the simulator, re-plan (warm-started from the rest).
    ``encoder`` None plans with the oracle (true dynamics and true distance) instead; ``ac`` None keeps
    the energy but renders the true future (``rendered_energy``).
    Args:
        tasks: from data_utils.make_tasks. stats: the encoder's feature standardisation.
        cfg: horizon, samples, elites, iters, mpc_steps, replan_every.
    Returns:
        {"success": (B,) bool, "final_dist": (B,) frame units, "frames": (B, steps+1, 64, 64, 3) uint8,
         "goal_frames": (B, 64, 64, 3) uint8}
    """
    b, h = len(tasks), cfg.horizon
    envs = [ArmReachEnv() for _ in range(b)]
    pairs = list(zip(envs, tasks, strict=True))
    goal_frames = np.stack(
        [e.reset(options={"q": t["q_goal"], "nuisance": t["goal_scene"]})[0]["image"] for e, t in pairs]
    )
    ee_goal = end_effector(np.stack([t["q_goal"] for t in tasks]))  # (B, 2): judging only, never planning
    obs = [e.reset(options={"q": t["q_start"], "nuisance": t["start_scene"]})[0] for e, t in pairs]
    frames = [np.stack([o["image"] for o in obs])]

    def encode(x: np.ndarray) -> torch.Tensor:  # (B, 64, 64, 3) uint8 -> (B, P, D) standardised
        return encode_trajectories(encoder, x[:, None], device, stats)[:, 0].to(device)

    z_goal = encode(goal_frames) if encoder is not None else None
    plan = torch.zeros(b, h, 2, device=device)
    gen = torch.Generator().manual_seed(seed)
    for step in range(cfg.mpc_steps):
        k = step % cfg.replan_every
        if k == 0:
            if encoder is None:
                cost = oracle_cost(np.stack([e.q for e in envs]), ee_goal)
            elif ac is None:
                cost = rendered_energy(encode, np.stack([e.q for e in envs]), [e.scene for e in envs], z_goal)
            else:
                p_now = torch.from_numpy(np.stack([o["proprio"] for o in obs])).to(device)  # (B, 4)
                cost = energy_cost(ac, encode(frames[-1]), p_now, z_goal)
            plan = cem(cost, plan, n_samples=cfg.samples, n_elites=cfg.elites, n_iters=cfg.iters, gen=gen)
        act = plan[:, k].clamp(-1, 1).cpu().numpy()
        obs = [e.step(a)[0] for e, a in zip(envs, act, strict=True)]
        frames.append(np.stack([o["image"] for o in obs]))
        if k == cfg.replan_every - 1:  # warm start: the unexecuted rest of the plan, then zeros
            plan = torch.cat(
                [plan[:, cfg.replan_every :], torch.zeros(b, cfg.replan_every, 2, device=device)], 1
            )
    final = np.linalg.norm(end_effector(np.stack([e.q for e in envs])) - ee_goal, axis=1)
    return {"success": final < SUCCESS_RADIUS, "final_dist": final, "frames": np.stack(frames, 1),
            "goal_frames": goal_frames}  # fmt: skip


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval of a success rate k / n."""
    if n == 0:
        return 0.0, 1.0
    p, z2 = k / n, z * z / n
    centre, half = (p + z2 / 2) / (1 + z2), z * np.sqrt(p * (1 - p) / n + z2 / (4 * n)) / (1 + z2)
    return float(centre - half), float(centre + half)
