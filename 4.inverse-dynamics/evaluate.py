"""Measurements for validate.py: load the models, and score IDMs, the LAM, the overlay reader and rollouts.

Shape key: N trajectories, T frames, B batch (pairs), K latent-action codes, S rollout steps.
Frames are uint8 tensors (N, T, 3, 64, 64) as in stages.py.
"""

from __future__ import annotations

import numpy as np
import torch
from stages import batch_pairs

from data_utils import N_ACTIONS, position_error
from models import ActionDynamics, InverseDynamics, LatentActionModel, OverlayReader, rollout
from utils import UserError


def load_models(ckpt: dict, device) -> dict:
    """Checkpoint dict -> {name: model in eval mode} for every model train.py saved."""
    models = {}
    try:
        for name, state in ckpt["states"].items():
            if name.startswith("idm_dot"):
                m = InverseDynamics("discrete")
            elif name == "idm_wall":
                m = InverseDynamics("continuous")
            elif name == "overlay":
                m = OverlayReader()
            elif name == "lam":
                m = LatentActionModel("fsq")
            elif name == "lam_ablation":
                m = LatentActionModel("vq", spread=False)
            else:
                m = ActionDynamics()
            m.load_state_dict(state)
            models[name] = m.to(device).eval()
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        raise UserError(
            f"checkpoint does not match this chapter's models ({type(e).__name__}): re-run train.py"
        ) from e
    return models


def all_pairs(n: int, t: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (trajectory, time) pair index of N trajectories of T frames: two (N*(T-1),) arrays."""
    return np.divmod(np.arange(n * (t - 1)), t - 1)


@torch.no_grad()
def over_pairs(fn, frames: torch.Tensor, device, batch: int = 500) -> torch.Tensor:
    """Apply ``fn(x0, x1)`` to every pair of ``frames`` (N, T, 3, 64, 64) in batches -> (B, ...) results."""
    traj, step = all_pairs(*frames.shape[:2])
    return torch.cat(
        [
            fn(*batch_pairs(frames, traj[i : i + batch], step[i : i + batch], device)).cpu()
            for i in range(0, len(traj), batch)
        ]
    )


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image: (B, 3, H, W) twice -> (B,). Higher is better."""
    mse = (pred.clamp(0, 1) - target).pow(2).mean(dim=(1, 2, 3))
    return 10 * torch.log10(1.0 / mse.clamp(min=1e-10))


@torch.no_grad()
def lam_scores(lam: LatentActionModel, frames: torch.Tensor, device, seed: int) -> dict:
    """The LAM on every held-out pair: its codes (B,), and Genie's controllability metric.

    Delta-t-PSNR (Bruce et al., 2024): PSNR of the decoder's frame_t+1 with the code inferred from the
    real pair, minus the PSNR with a random code. Large when the code controls the prediction.
    Returns {"codes": (B,), "psnr_inferred": (B,), "psnr_random": (B,)}.
    """
    gen = torch.Generator().manual_seed(seed)
    out = {"codes": [], "psnr_inferred": [], "psnr_random": []}

    def score(x0, x1):
        code, idx, _ = lam.encode(x0, x1)
        rand = lam.code_of_index(torch.randint(0, lam.n_codes, (len(x0),), generator=gen).to(x0.device))
        out["codes"].append(idx.cpu())
        out["psnr_inferred"].append(psnr(lam.decode(x0, code), x1).cpu())
        out["psnr_random"].append(psnr(lam.decode(x0, rand), x1).cpu())
        return idx

    over_pairs(score, frames, device)
    return {k: torch.cat(v) for k, v in out.items()}


def confusion(codes: torch.Tensor, actions: torch.Tensor, n_codes: int) -> np.ndarray:
    """(K, 5) counts: how often code k co-occurs with true action a. codes, actions: (B,) int64."""
    c = torch.zeros(n_codes, N_ACTIONS)
    c.index_put_((codes, actions), torch.ones(len(codes)), accumulate=True)
    return c.numpy()


def mapping_accuracy(
    codes, actions, n_labels: int, draws: int, seed: int, map_codes, n_codes: int
) -> np.ndarray:
    """Name the codes from ``n_labels`` random labelled pairs, score the naming on all pairs; ``draws`` times.

    Returns the (draws,) accuracies, so a lucky draw of 20 pairs is not reported as the result.
    """
    rng = np.random.default_rng(seed)
    accs = []
    for _ in range(draws):
        pick = torch.from_numpy(rng.choice(len(codes), n_labels, replace=False))
        mapping = map_codes(codes[pick], actions[pick], n_codes)
        accs.append((mapping[codes] == actions).float().mean().item())
    return np.array(accs)


@torch.no_grad()
def rollout_errors(
    model: ActionDynamics, frames: torch.Tensor, actions: torch.Tensor, positions, device
) -> np.ndarray:
    """Dream S steps from each true start frame under ``actions`` (N, S); dot position error per step (S,)."""
    start = frames[:, 0].to(device).float() / 255.0  # (N, 3, 64, 64)
    pred = rollout(model, start, actions.to(device))  # (N, S, 3, 64, 64)
    pred = pred.permute(0, 1, 3, 4, 2).cpu().numpy()  # (N, S, 64, 64, 3)
    return np.array(
        [position_error(pred[:, s], positions[:, s + 1], "dot").mean() for s in range(actions.shape[1])]
    )
