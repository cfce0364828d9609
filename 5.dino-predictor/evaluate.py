"""What validate.py measures, one function each: loading the checkpoint's models, feature rollout error
against horizon, goal reaching with CEM-MPC in the simulator, and the decoded rollout GIF.

Shape key: B batch (trajectories or episodes), S CEM samples, H horizon, N = 16 patch tokens, D feature dim.
"""

from __future__ import annotations

import numpy as np
import torch
from encoders import DINOV2, FrozenEncoder, PixelPatches, load_dinov2

from data_utils import WORLD, ArmReachEnv, end_effector, render_many, step_joints
from models import FeatureDecoder, FeaturePredictor, ViT, cem, rollout
from utils import UserError

SUCCESS_RADIUS = 0.06  # frame units (3.8 px): the end-effector must end this close to the goal's


def load_models(ckpt: dict, device) -> tuple[dict, dict, FeatureDecoder]:
    """Rebuild the frozen encoders, the predictors and the decoder from a checkpoint (plain state dicts).

    Returns:
        encoders {"dino", "random", "pixels"} (the last two only if trained), predictors {"dino",
        "dino/nomask", "random", "pixels"}, and the decoder.
    """
    cfg = ckpt["config"]
    if ckpt.get("world") != WORLD:
        raise UserError(
            f"the checkpoint was trained on the {cfg.get('world', 'unknown')!r} world, this chapter now uses "
            f"{WORLD!r} (the arm with nuisance); re-run `uv run train.py`"
        )
    encoders, predictors = {}, {}
    try:
        for name, state in ckpt["encoders"].items():
            if name == "dino" and cfg["encoder"] == DINOV2:
                enc = FrozenEncoder(load_dinov2(), 384)
                enc.mu.copy_(state["mu"])
                enc.sigma.copy_(state["sigma"])
            else:
                net = PixelPatches() if name == "pixels" else ViT(dim=cfg["vit_dim"], depth=cfg["vit_depth"])
                enc = FrozenEncoder(net, state["mu"].numel())
                enc.load_state_dict(state)
            encoders[name] = enc.to(device).eval()
        for key, state in ckpt["predictors"].items():
            d = encoders[key.split("/")[0]].mu.numel()
            model = FeaturePredictor(
                d, 16, cfg["num_hist"], cfg["pred_dim"], cfg["pred_depth"], causal=key != "dino/nomask"
            )
            model.load_state_dict(state)
            predictors[key] = model.to(device).eval()
        decoder = FeatureDecoder(encoders["dino"].mu.numel())
        decoder.load_state_dict(ckpt["decoder"])
    except (KeyError, RuntimeError) as e:
        raise UserError(
            f"the checkpoint does not match this chapter's models ({type(e).__name__}); re-run train.py"
        ) from None
    return encoders, predictors, decoder.to(device).eval()


@torch.no_grad()
def rollout_errors(predictor, z, proprio, actions, device, window=None, teacher_forced=False) -> tuple:
    """Open-loop feature rollout from the first true frame, and the copy-last baseline.

    Args:
        z: (B, 1+H, N, D) true standardised features; proprio: (B, 1+H, 4); actions: (B, H, 2).
        window: frames the predictor reads (1 = as the planner does; None = its num_hist).
        teacher_forced: also return the teacher-forced one-step loss on the first num_hist frames.
    Returns:
        (H,) mean squared error per horizon of the rollout, (H,) of copy-last, the rollout (B, H, N, D)
        [, the teacher-forced loss].
    """
    z, proprio, actions = z.to(device), proprio.to(device), actions.to(device)
    pred, _ = rollout(predictor, z[:, 0], proprio[:, 0], actions, window)  # (B, H, N, D)
    err = (pred - z[:, 1:]).pow(2).mean(dim=(0, 2, 3))  # (H,)
    copy = (z[:, :1] - z[:, 1:]).pow(2).mean(dim=(0, 2, 3))  # (H,) nothing moves
    out = (err.cpu().numpy(), copy.cpu().numpy(), pred.cpu())
    if teacher_forced:  # every input true: what the training loss measured
        h = predictor.num_hist
        z_tf, _ = predictor(z[:, :h], proprio[:, :h], actions[:, :h])
        out = (*out, float((z_tf - z[:, 1 : h + 1]).pow(2).mean()))
    return out


def feature_cost(predictor, z_now, p_now, z_goal, chunk: int = 512):
    """The planning objective from features alone: action samples (B, S, H, 2) -> costs (B, S).

    The mean squared distance between the imagined patch features and the goal image's, *summed over
    the horizon*, so that a plan which gets there early and stays is preferred. The goal enters only
    as an image: no goal joint angles, no position read-out. The current proprio is an input, as a
    robot knows its own joints.
    Args: z_now, z_goal: (B, N, D) current and goal features; p_now: (B, P) current proprio.
    """

    def cost(samples: torch.Tensor) -> torch.Tensor:
        b, s = samples.shape[:2]
        z0, p0 = z_now.repeat_interleave(s, 0), p_now.repeat_interleave(s, 0)  # (B*S, N, D), (B*S, P)
        zg, acts = z_goal.repeat_interleave(s, 0), samples.flatten(0, 1)  # (B*S, N, D), (B*S, H, A)
        out = []
        for i in range(0, b * s, chunk):  # in chunks: a few MB at a time instead of one huge tensor
            c = slice(i, i + chunk)
            # window 1: the arm is Markov given frame and proprio, and it is 3x cheaper
            zs, _ = rollout(predictor, z0[c], p0[c], acts[c], 1)  # zs: (chunk, H, N, D)
            out.append((zs - zg[c, None]).pow(2).mean(dim=(2, 3)).sum(1))  # summed over the horizon
        return torch.cat(out).view(b, s)

    return cost


def true_joints(q_now: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """The true arm dynamics over a horizon: q_now (B, 2), actions (B, S, H, 2) -> joints (B, S, H, 2)."""
    q, out = np.broadcast_to(q_now[:, None], actions.shape[:2] + (2,)), []  # q: (B, S, 2)
    for h in range(actions.shape[2]):
        q = step_joints(q, actions[:, :, h])
        out.append(q)
    return np.stack(out, 2)


def rendered_cost(encoder, q_now: np.ndarray, scenes: list, z_goal: torch.Tensor, device):
    """The features' ceiling: ``feature_cost`` with the true simulator in place of the predictor.

    Each candidate sequence is played out by the true arm dynamics and every imagined frame is rendered
    under the episode's own scene (its distractor held where it is now) and encoded. What is left of the
    error is the cost's own: where the features' minimum lies and how far its slope reaches.
    Args: q_now: (B, 2) joint angles; scenes: B Nuisance; z_goal: (B, N, D). Samples (B, S, H, 2) -> (B, S).
    """

    def cost(samples: torch.Tensor) -> torch.Tensor:
        qs = true_joints(q_now, samples.cpu().numpy())  # (B, S, H, 2)
        total = torch.zeros(qs.shape[:2])
        for h in range(qs.shape[2]):
            q = qs[:, :, h]  # (B, S, 2)
            frames = np.stack([render_many(q_b, scene) for q_b, scene in zip(q, scenes, strict=True)])
            z = encoder.encode(frames, device)  # (B, S, N, D) on the CPU
            total += (z - z_goal.cpu()[:, None]).pow(2).mean(dim=(2, 3))  # summed over the horizon
        return total.to(samples.device)

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
def goal_reaching(encoder, predictor, tasks: list, cfg, device, seed: int = 0) -> dict:
    """CEM-MPC from a start pose to a goal *image*, every task planned together in one batch.

    Every ``replan_every`` steps: encode the current frame, plan ``horizon`` actions with CEM, execute
    the first ``replan_every`` actions in the simulator, re-plan (warm-started from the rest of the plan).
    ``encoder`` None plans with the oracle (true dynamics and true distance) instead of the model;
    ``predictor`` None keeps the feature cost but renders the true future (``rendered_cost``).
    Args:
        tasks: from data_utils.make_tasks. cfg: horizon, samples, elites, iters, mpc_steps, replan_every.
    Returns:
        {"success": (B,) bool, "final_dist": (B,) frame units, "frames": (B, steps+1, 64, 64, 3) uint8,
         "goal_frames": (B, 64, 64, 3) uint8}
    """
    b, h = len(tasks), cfg.horizon
    envs = [ArmReachEnv() for _ in range(b)]
    goal_frames = np.stack(
        [
            env.reset(options={"q": t["q_goal"], "nuisance": t["goal_scene"]})[0]["image"]
            for env, t in zip(envs, tasks, strict=True)
        ]
    )
    ee_goal = end_effector(np.stack([t["q_goal"] for t in tasks]))  # (B, 2): judging only, never planning
    obs = [
        env.reset(options={"q": t["q_start"], "nuisance": t["start_scene"]})[0]
        for env, t in zip(envs, tasks, strict=True)
    ]
    frames = [np.stack([o["image"] for o in obs])]
    z_goal = encoder.encode(goal_frames, device).to(device) if encoder is not None else None  # (B, N, D)
    plan = torch.zeros(b, h, 2, device=device)
    gen = torch.Generator().manual_seed(seed)
    for step in range(cfg.mpc_steps):
        k = step % cfg.replan_every
        if k == 0:
            if encoder is None:
                cost = oracle_cost(np.stack([env.q for env in envs]), ee_goal)
            elif predictor is None:
                q_now, scenes = np.stack([env.q for env in envs]), [env.scene for env in envs]
                cost = rendered_cost(encoder, q_now, scenes, z_goal, device)
            else:
                z_now = encoder.encode(frames[-1], device).to(device)  # (B, N, D)
                p_now = torch.from_numpy(np.stack([o["proprio"] for o in obs])).to(device)  # (B, 4)
                cost = feature_cost(predictor, z_now, p_now, z_goal)
            plan = cem(cost, plan, n_samples=cfg.samples, n_elites=cfg.elites, n_iters=cfg.iters, gen=gen)
        act = plan[:, k].clamp(-1, 1).cpu().numpy()
        obs = [env.step(a)[0] for env, a in zip(envs, act, strict=True)]
        frames.append(np.stack([o["image"] for o in obs]))
        if k == cfg.replan_every - 1:  # warm start: the unexecuted rest of the plan, then zeros
            plan = torch.cat(
                [plan[:, cfg.replan_every :], torch.zeros(b, cfg.replan_every, 2, device=device)], 1
            )
    final = np.linalg.norm(end_effector(np.stack([env.q for env in envs])) - ee_goal, axis=1)
    return {"success": final < SUCCESS_RADIUS, "final_dist": final, "frames": np.stack(frames, 1),
            "goal_frames": goal_frames}  # fmt: skip


@torch.no_grad()
def decode(decoder, z: torch.Tensor, device) -> np.ndarray:
    """Standardised DINO features (..., N, D) -> uint8 frames (..., 64, 64, 3) through the decoder."""
    lead = z.shape[:-2]
    x = decoder(z.reshape(-1, *z.shape[-2:]).to(device)).clamp(0, 1)  # (M, 3, 64, 64)
    return (x.permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8).reshape(*lead, 64, 64, 3)
