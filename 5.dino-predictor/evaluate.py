"""What validate.py measures, one function each: loading the checkpoint's models, feature rollout error
against horizon, goal reaching with CEM-MPC in the simulator, and the decoded rollout GIF.

Shape key: B batch (trajectories or episodes), S CEM samples, H horizon, N = 16 patch tokens, D feature dim.
"""

from __future__ import annotations

import numpy as np
import torch
from encoders import DINOV2, FrozenEncoder, load_dinov2
from PIL import Image

from data_utils import PointMassRoom
from models import ConvCodec, FeatureDecoder, FeaturePredictor, ViT, cem, rollout
from utils import UserError

SUCCESS_RADIUS = 0.06  # arena units (3.8 px): the agent's centre must end this close to the goal's


def load_models(ckpt: dict, device) -> tuple[dict, dict, FeatureDecoder]:
    """Rebuild the frozen encoders, the predictors and the decoder from a checkpoint (plain state dicts).

    Returns:
        encoders {"dino", "random", "codec"} (the last two only if trained), predictors {"dino",
        "dino/nomask", "random", "codec"}, and the decoder.
    """
    cfg = ckpt["config"]
    encoders, predictors = {}, {}
    try:
        for name, state in ckpt["encoders"].items():
            if name == "dino" and cfg["encoder"] == DINOV2:
                enc = FrozenEncoder(load_dinov2(), 384)
                enc.mu.copy_(state["mu"])
                enc.sigma.copy_(state["sigma"])
            else:
                net = (
                    ConvCodec(cfg["codec_dim"])
                    if name == "codec"
                    else ViT(dim=cfg["vit_dim"], depth=cfg["vit_depth"])
                )
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
def rollout_errors(predictor, z: torch.Tensor, proprio: torch.Tensor, actions: torch.Tensor, device) -> tuple:
    """Open-loop feature rollout from the first true frame, and the copy-last baseline.

    Args:
        z: (B, 1+H, N, D) true standardised features; proprio: (B, 1+H, 2); actions: (B, H, 2).
    Returns:
        (H,) mean squared error per horizon of the rollout, (H,) of copy-last, and the rollout (B, H, N, D).
    """
    z, proprio, actions = z.to(device), proprio.to(device), actions.to(device)
    pred, _ = rollout(predictor, z[:, 0], proprio[:, 0], actions)  # (B, H, N, D)
    err = (pred - z[:, 1:]).pow(2).mean(dim=(0, 2, 3))  # (H,)
    copy = (z[:, :1] - z[:, 1:]).pow(2).mean(dim=(0, 2, 3))  # (H,) nothing moves
    return err.cpu().numpy(), copy.cpu().numpy(), pred.cpu()


def horizon_cost(predictor, z_now, p_now, z_goal, p_goal=None, proprio_weight: float = 0.0):
    """The planning objective for CEM: action samples (B, S, H, 2) -> costs (B, S).

    The mean squared distance between the imagined features and the goal image's features, *summed over
    the horizon*, so that a plan which gets there early and stays is preferred; with ``proprio_weight``
    > 0 also the squared distance of the predicted proprio to the goal's (DINO-WM's full objective).
    Args: z_now, z_goal: (B, N, D) current and goal features; p_now, p_goal: (B, 2) proprio.
    """

    def cost(samples: torch.Tensor) -> torch.Tensor:
        b, s = samples.shape[:2]
        zs, ps = rollout(  # window 1: the room is Markov given frame and proprio, and 3x cheaper
            predictor, z_now.repeat_interleave(s, 0), p_now.repeat_interleave(s, 0), samples.flatten(0, 1), 1
        )  # (B*S, H, N, D)
        dist = (zs - z_goal.repeat_interleave(s, 0)[:, None]).pow(2).mean(dim=(2, 3))  # (B*S, H)
        if proprio_weight > 0:
            dist = dist + proprio_weight * (ps - p_goal.repeat_interleave(s, 0)[:, None]).pow(2).sum(-1)
        return dist.sum(1).view(b, s)

    return cost


@torch.no_grad()
def goal_reaching(encoder, predictor, world: str, tasks: np.ndarray, cfg, device, seed: int = 0) -> dict:
    """CEM-MPC from start to goal image in the simulator, all episodes planned together.

    Every ``replan_every`` steps: encode the current frame, plan ``horizon`` actions with CEM minimising
    the feature distance to the goal image's features *summed over the horizon* (so the plan gets there
    early and stays), execute the first ``replan_every`` actions, re-plan (warm-started from the rest).
    Args:
        tasks: (B, 2, 2) start and goal positions. cfg: holds horizon, samples, iters, elites, mpc_steps,
        replan_every.
    Returns:
        {"success": (B,) bool, "final_dist": (B,) arena units, "frames": (B, steps+1, 64, 64, 3) uint8}
    """
    b, h = len(tasks), cfg.horizon
    envs = [PointMassRoom(world, seed=i) for i in range(b)]
    goal_frames = np.stack([env.reset(goal) for env, goal in zip(envs, tasks[:, 1], strict=True)])
    z_goal = encoder.encode(goal_frames, device).to(device)  # (B, N, D)
    p_goal = torch.tensor(tasks[:, 1], dtype=torch.float32, device=device)  # (B, 2)
    frames = [np.stack([env.reset(start) for env, start in zip(envs, tasks[:, 0], strict=True)])]
    plan = torch.zeros(b, h, 2, device=device)
    gen = torch.Generator().manual_seed(seed)
    for step in range(cfg.mpc_steps):
        k = step % cfg.replan_every
        if k == 0:
            z_now = encoder.encode(frames[-1], device).to(device)  # (B, N, D)
            p_now = torch.tensor(np.stack([env.pos for env in envs]), dtype=torch.float32, device=device)

            cost = horizon_cost(predictor, z_now, p_now, z_goal, p_goal, cfg.proprio_cost)
            plan = cem(cost, plan, n_samples=cfg.samples, n_elites=cfg.elites, n_iters=cfg.iters, gen=gen)
        act = plan[:, k].clamp(-1, 1).cpu().numpy()
        frames.append(np.stack([env.step(a) for env, a in zip(envs, act, strict=True)]))
        if k == cfg.replan_every - 1:  # warm start: the unexecuted rest of the plan, then zeros
            plan = torch.cat(
                [plan[:, cfg.replan_every :], torch.zeros(b, cfg.replan_every, 2, device=device)], 1
            )
    final = np.linalg.norm(np.stack([env.pos for env in envs]) - tasks[:, 1], axis=1)
    return {"success": final < SUCCESS_RADIUS, "final_dist": final, "frames": np.stack(frames, 1)}


@torch.no_grad()
def decode(decoder, z: torch.Tensor, device) -> np.ndarray:
    """Standardised DINO features (..., N, D) -> uint8 frames (..., 64, 64, 3) through the decoder."""
    lead = z.shape[:-2]
    x = decoder(z.reshape(-1, *z.shape[-2:]).to(device)).clamp(0, 1)  # (M, 3, 64, 64)
    return (x.permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8).reshape(*lead, 64, 64, 3)


def save_rollout_gif(truth: np.ndarray, dream: np.ndarray, path, scale: int = 3) -> None:
    """A GIF: each frame shows the truth (top row) above the decoded rollout (bottom row), for a few
    trajectories side by side. truth, dream: (B, T, 64, 64, 3) uint8."""
    b, t = truth.shape[:2]
    pad = lambda x: np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), constant_values=255)  # noqa: E731
    images = []
    for i in range(t):
        rows = [np.concatenate(list(pad(v[:, i])), axis=1) for v in (truth, dream)]  # (68, 68B, 3) each
        img = np.concatenate(rows, axis=0).repeat(scale, 0).repeat(scale, 1)
        images.append(Image.fromarray(img))
    images[0].save(path, save_all=True, append_images=images[1:], duration=400, loop=0)
