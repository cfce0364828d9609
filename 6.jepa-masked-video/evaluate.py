"""What validate.py measures: probes, feature spread, masked-prediction loss, AC rollouts, goal reaching.

Shape key: N clips, B batch, T frames, P patch tokens per frame, D feature dim, H horizon, A action dims.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from jepa import feature_spread, jepa_loss
from training import build_ac, build_encoder, encode_trajectories, read_position

from data_utils import PointMassRoom, to_float
from models import ACPredictor, AttentiveProbe, MaskedPredictor, cem

SUCCESS_RADIUS = 0.06  # arena units (3.8 px), as in chapter 5: the agent must end this close to the goal


def load_models(ckpt: dict, device) -> dict:
    """Rebuild every network of a checkpoint (eval mode), plus the random-init encoder (step 0 weights)."""
    cfg = ckpt["config"]
    torch.manual_seed(cfg["seed"])  # the same draw as train.py's: the encoder as it was at step 0
    models = {"init": build_encoder(cfg)}
    models["encoder"], models["ablation"] = build_encoder(cfg), build_encoder(cfg)
    models["encoder"].load_state_dict(ckpt["encoder"])
    models["ablation"].load_state_dict(ckpt["ablation_encoder"])
    models["predictor"] = MaskedPredictor(cfg["enc_dim"], cfg["pred_dim"], cfg["pred_depth"], cfg["heads"])
    models["predictor"].load_state_dict(ckpt["predictor"])
    models["ac"] = build_ac(cfg, cfg["n_patches"])
    models["ac"].load_state_dict(ckpt["ac"])
    models = {k: m.to(device).eval() for k, m in models.items()}
    return models | {"z_stats": ckpt["z_stats"], "readout": ckpt["readout"]}


def frame_features(models: dict, frames: np.ndarray, device) -> torch.Tensor:
    """Standardised per-frame features of single frames (B, 64, 64, 3) uint8 -> (B, P, D) on ``device``."""
    return encode_trajectories(models["encoder"], frames[:, None], device, models["z_stats"])[:, 0].to(device)


@torch.no_grad()
def clip_features(encoder, frames: np.ndarray, device, batch: int = 64) -> torch.Tensor:
    """Frozen tokens of clips: (N, T, 64, 64, 3) uint8 -> (N, tokens, D) on the CPU."""
    return torch.cat(
        [encoder(to_float(frames[i : i + batch]).to(device)).cpu() for i in range(0, len(frames), batch)]
    )


def probe_accuracy(train_x, train_y, test_x, test_y, n_classes: int, steps: int, seed: int) -> float:
    """Train an attentive probe on frozen tokens (N, tokens, D) and labels (N,); return test accuracy.

    The tokens are first standardised per (token, dim) with the training set's mean and std: most of a
    frozen token is the same in every clip (position embedding, background) and would drown the rest."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-4  # (N_tokens, D): the probe's fixed input norm
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std  # (MAE's linear probe uses a BatchNorm)
    torch.manual_seed(seed)
    probe = AttentiveProbe(train_x.shape[-1], n_classes)
    opt = torch.optim.AdamW(probe.parameters(), lr=2e-3, weight_decay=0.01)
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
def spread_and_loss(models: dict, frames: np.ndarray, device, seed: int) -> dict:
    """Held-out collapse monitor for the trained, ablation and random-init encoders, and the masked loss."""
    x = to_float(frames).to(device)  # (B, T, 3, H, W)
    out = {}
    for name in ("encoder", "ablation", "init"):
        dim = models[name].dim
        out[f"spread/{name}"] = feature_spread(F.layer_norm(models[name](x), (dim,)))
    rng = np.random.default_rng(seed)
    losses = [
        jepa_loss(models["encoder"], models["predictor"], models["encoder"], x, rng)[0] for _ in range(4)
    ]
    out["masked_loss"] = float(torch.stack(losses).mean())
    return out


@torch.no_grad()
def rollout_errors(ac: ACPredictor, z, actions, proprio, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """L1 feature error of open-loop rollouts at horizons 1..H and of copy-last, over every start frame.

    Args:
        z: (N, T, P, D) frozen features; actions, proprio: (N, T, 2).
    Returns:
        (model errors (H,), copy-last errors (H,))
    """
    model, copy = np.zeros(horizon), np.zeros(horizon)
    starts = range(z.shape[1] - horizon)
    for s in starts:
        pred, _ = ac.rollout(z[:, s], proprio[:, s], actions[:, s : s + horizon])  # (N, H, P, D)
        truth = z[:, s + 1 : s + 1 + horizon]
        model += (pred - truth).abs().mean((0, 2, 3)).cpu().numpy() / len(starts)
        copy += (z[:, s : s + 1] - truth).abs().mean((0, 2, 3)).cpu().numpy() / len(starts)
    return model, copy


def goal_tasks(n: int, seed: int, min_dist: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """``n`` seeded (start, goal) pairs in the open room, at least ``min_dist`` apart: (n, 2) each."""
    env, starts, goals = PointMassRoom("open", seed=seed), [], []
    while len(starts) < n:
        env.reset()
        a = env.pos.copy()
        env.reset()
        if np.linalg.norm(env.pos - a) >= min_dist:
            starts.append(a)
            goals.append(env.pos.copy())
    return np.array(starts), np.array(goals)


def goal_position(models: dict, frames: np.ndarray, device) -> torch.Tensor:
    """Where goal images (B, 64, 64, 3) uint8 put the agent, read from their full token grid: (B, 2)."""
    tokens = encode_trajectories(models["encoder"], frames[:, None], device, pool=1)[:, 0]  # (B, 64, D)
    return read_position(models["readout"], tokens).to(device)


def make_energy(models: dict, z0, s0, z_goal, s_goal, weight: float):
    """The planner's energy for one MPC step: (B, S, H, A) action sequences -> (B, S).

    Imagine the sequence with the 2-AC predictor from (z0 (B, P, D), s0 (B, 2)); at every imagined step
    take the L1 distance between the imagined features and the goal's features z_goal (B, P, D), plus
    ``weight`` times the L1 distance between the imagined (x, y) and the goal's (x, y) s_goal (B, 2), as
    read from the goal image's tokens by the linear readout; sum over the horizon (not the last step only)."""
    ac, b = models["ac"], z0.shape[0]

    def energy(seqs: torch.Tensor) -> torch.Tensor:
        """(B, S, H, A) -> (B, S)."""
        n = seqs.shape[1]
        zz, ss = ac.rollout(z0.repeat_interleave(n, 0), s0.repeat_interleave(n, 0), seqs.flatten(0, 1))
        dist = (zz - z_goal.repeat_interleave(n, 0)[:, None]).abs().mean((2, 3))  # (B*S, H)
        if weight > 0:
            dist = dist + weight * (ss - s_goal.repeat_interleave(n, 0)[:, None]).abs().sum(-1)
        return dist.sum(1).view(b, n)

    return energy


def oracle_energy(envs, goals):
    """The honest upper bound: the same CEM scoring sequences with the true simulator and the true
    distance to the goal (summed over the horizon). (B, S, H, A) -> (B, S)."""

    def energy(seqs: torch.Tensor) -> torch.Tensor:
        """(B, S, H, A) -> (B, S)."""
        cost = torch.zeros(seqs.shape[:2])
        for i, (env, goal) in enumerate(zip(envs, goals, strict=True)):
            start = env.pos.copy()
            for j, seq in enumerate(seqs[i].cpu().numpy().astype(np.float64)):
                for a in seq:
                    env.step(a)
                    cost[i, j] += float(np.linalg.norm(env.pos - goal))
                env.pos = start.copy()
        return cost

    return energy


@torch.no_grad()
def plan_episodes(models, starts, goals, device, cfg: dict, mode: str = "energy") -> dict:
    """MPC: every step, CEM over ``horizon`` actions minimising an energy; execute the first action;
    re-plan from the new observation. ``mode``: "energy" (features + read-out position, the planner),
    "features" (the feature L1 alone), "oracle" (true simulator), "random" (uniform random actions).

    Returns:
        {"success": (B,) bool, "final_dist": (B,) arena units, "frames": (B, steps+1, 64, 64, 3) uint8}
    """
    b, h = len(starts), cfg["horizon"]
    envs = [PointMassRoom("open", seed=i) for i in range(b)]
    goal_frames = np.stack([e.reset(g) for e, g in zip(envs, goals, strict=True)])
    z_goal = frame_features(models, goal_frames, device)  # (B, P, D): the goal is an image
    s_goal = goal_position(models, goal_frames, device)  # (B, 2)
    frames = [np.stack([e.reset(s) for e, s in zip(envs, starts, strict=True)])]
    plan = torch.zeros(b, h, 2, device=device)
    gen, rng = torch.Generator().manual_seed(cfg["seed"]), np.random.default_rng(cfg["seed"])
    for _ in range(cfg["mpc_steps"]):
        z0 = frame_features(models, frames[-1], device)  # (B, P, D)
        s0 = torch.as_tensor(np.stack([e.pos for e in envs]), dtype=torch.float32, device=device)
        if mode == "random":
            act = rng.uniform(-1, 1, size=(b, 2))
        else:
            weight = cfg["position_weight"] if mode == "energy" else 0.0
            energy = (
                oracle_energy(envs, goals)
                if mode == "oracle"
                else make_energy(models, z0, s0, z_goal, s_goal, weight)
            )
            plan = cem(
                energy, plan, n_samples=cfg["samples"], n_elites=cfg["elites"], n_iters=cfg["iters"], gen=gen
            )
            act = plan[:, 0].cpu().numpy()
            plan = torch.cat([plan[:, 1:], torch.zeros_like(plan[:, :1])], 1)  # warm start: shift by one
        frames.append(np.stack([e.step(a) for e, a in zip(envs, act.astype(np.float64), strict=True)]))
    final = np.linalg.norm(np.stack([e.pos for e in envs]) - goals, axis=1)
    return {"success": final < SUCCESS_RADIUS, "final_dist": final, "frames": np.stack(frames, 1)}


@torch.no_grad()
def energy_landscape(models, start, goal, device, weight: float, n: int = 21, horizon: int = 3) -> np.ndarray:
    """The planner's energy (``make_energy``) of holding one action (dx, dy) for ``horizon`` steps, on an
    n x n grid over [-1, 1]^2: (n, n), rows dy, columns dx."""
    env = PointMassRoom("open", seed=0)
    goal_frame = env.reset(goal)[None]
    z_goal, s_goal = frame_features(models, goal_frame, device), goal_position(models, goal_frame, device)
    z0 = frame_features(models, env.reset(start)[None], device)
    s0 = torch.as_tensor(start, dtype=torch.float32, device=device)[None]  # (1, 2)
    g = torch.linspace(-1, 1, n)
    acts = (
        torch.stack(torch.meshgrid(g, g, indexing="xy"), -1).reshape(1, -1, 1, 2).expand(-1, -1, horizon, 2)
    )
    return make_energy(models, z0, s0, z_goal, s_goal, weight)(acts.to(device)).view(n, n).cpu().numpy()
