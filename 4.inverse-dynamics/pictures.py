"""The pictures validate.py writes: the LAM's code <-> action table, frame pairs with their inferred
actions, and the pay-off's dreams beside the truth.

Shape key: N trajectories, T frames, K latent-action codes, S rollout steps.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from data_utils import ACTION_NAMES, add_overlay, locate_object
from models import perplexity, rollout


def save_confusion(codes: dict, actions: torch.Tensor, models: dict, ckpt: dict, out_dir) -> None:
    """out_dir/lam_confusion.png: for the LAM (and its ablation), how often each code meets each true action.

    codes: {"lam": (B,), "lam_ablation": (B,)} code indices of the held-out pairs; actions: (B,) true.
    """
    fig, axes = plt.subplots(1, len(codes), figsize=(5.5 * len(codes), 4.5), squeeze=False)
    for ax, (name, c) in zip(axes[0], codes.items(), strict=True):
        k = models[name].n_codes
        table = np.zeros((k, len(ACTION_NAMES)), dtype=int)
        np.add.at(table, (c.numpy(), actions.numpy()), 1)
        ax.imshow(table / max(table.max(), 1), cmap="Blues", vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(table):
            if v:
                ax.text(
                    j,
                    i,
                    str(v),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="k" if v < table.max() / 2 else "w",
                )
        names = [f"code {i}" for i in range(k)]
        if name == "lam":  # the naming train.py made from 20 labelled pairs
            names = [f"code {i} -> {ACTION_NAMES[int(a)]}" for i, a in enumerate(ckpt["lam_mapping"])]
        ax.set_yticks(range(k), names, fontsize=8)
        ax.set_xticks(range(len(ACTION_NAMES)), ACTION_NAMES)
        title = "default LAM (FSQ 3x3, spread, weighted)" if name == "lam" else "ablation (VQ 8, plain MSE)"
        ax.set_title(f"{title}\nperplexity {perplexity(c, k):.2f} of {k}", fontsize=9)
        ax.set_xlabel("true action (never seen in training)")
    fig.tight_layout()
    fig.savefig(out_dir / "lam_confusion.png", dpi=100)
    plt.close(fig)


def zoom(frame0: np.ndarray, frame1: np.ndarray, size: int = 16) -> np.ndarray:
    """A (size, size, 3) crop around the dot of frame0: frame_t in red, frame_t+1 in green (yellow: both)."""
    centre, _ = locate_object(frame0[None], "dot")  # (1, 2)
    x0, y0 = (int(round(v)) - size // 2 for v in centre[0])
    rows, cols = np.arange(y0, y0 + size) % 64, np.arange(x0, x0 + size) % 64
    out = np.zeros((size, size, 3))
    out[..., 0] = frame0[np.ix_(rows, cols)].mean(-1) / 255
    out[..., 1] = frame1[np.ix_(rows, cols)].mean(-1) / 255
    return out


@torch.no_grad()
def save_pairs(dot: dict, models: dict, ckpt: dict, device, seed: int, out_dir, n: int = 8) -> None:
    """out_dir/pairs.png: held-out frame pairs with the true, IDM, LAM and overlay-read actions under them."""
    rng = np.random.default_rng(seed)
    traj, t = rng.choice(len(dot["frames"]), n, replace=False), rng.integers(0, dot["actions"].shape[1], n)
    f0, f1 = dot["frames"][traj, t], dot["frames"][traj, t + 1]  # (n, 64, 64, 3) each
    x0, x1 = (torch.from_numpy(f).permute(0, 3, 1, 2).float().to(device) / 255 for f in (f0, f1))
    frac = ckpt["config"]["label_fraction"]
    idm = models[f"idm_dot@{frac:g}"].predict(x0, x1).cpu()
    code = models["lam"].encode(x0, x1)[1].cpu()
    hud, _ = add_overlay(dot["frames"][traj], dot["actions"][traj], seed=seed)
    hud_t = hud[np.arange(n), t]  # (n, 64, 64, 3): frame_t as a gameplay video would show it
    read = models["overlay"](torch.from_numpy(hud_t).permute(0, 3, 1, 2).float().to(device) / 255).argmax(-1)
    fig, axes = plt.subplots(3, n, figsize=(2.1 * n, 7.4))
    for i in range(n):
        axes[0, i].imshow(zoom(f0[i], f1[i]), interpolation="nearest")
        axes[1, i].imshow(np.concatenate([f0[i], np.full((64, 2, 3), 255, np.uint8), f1[i]], axis=1))
        axes[2, i].imshow(hud_t[i], interpolation="nearest")
        true = ACTION_NAMES[dot["actions"][traj[i], t[i]]]
        lam = ACTION_NAMES[int(ckpt["lam_mapping"][code[i]])]
        axes[0, i].set_title(f"true: {true}", fontsize=9)
        axes[1, i].set_xlabel(f"IDM: {ACTION_NAMES[idm[i]]}\nLAM: code {int(code[i])} -> {lam}", fontsize=9)
        axes[2, i].set_xlabel(f"overlay read: {ACTION_NAMES[int(read[i])]}", fontsize=9)
        for ax in axes[:, i]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("zoom: t red, t+1 green", fontsize=8)
    axes[1, 0].set_ylabel("frame t | frame t+1", fontsize=8)
    axes[2, 0].set_ylabel("frame t with overlay", fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "pairs.png", dpi=90)
    plt.close(fig)


@torch.no_grad()
def save_rollouts(dot: dict, models: dict, sources, device, out_dir, n_show: int = 2) -> None:
    """out_dir/payoff_rollouts.png: the simulator's truth, then each pay-off model's 10-step dream, for
    ``n_show`` held-out trajectories (all dreamt under the true actions from the true start frame)."""
    rows, names = [], []
    for i in range(n_show):
        start = torch.from_numpy(dot["frames"][i : i + 1, 0]).permute(0, 3, 1, 2).float().to(device) / 255
        acts = torch.from_numpy(dot["actions"][i : i + 1]).to(device)
        rows.append(dot["frames"][i, 1:] / 255)
        names.append(f"traj {i}: truth")
        for s in sources:
            rows.append(rollout(models[f"dyn_{s}"], start, acts)[0].permute(0, 2, 3, 1).cpu().numpy())
            names.append(f"{s} labels")
    steps = rows[0].shape[0]
    gap = np.ones((64, 3, 3))
    img = np.concatenate([np.concatenate([x for f in r for x in (f, gap)], axis=1) for r in rows], axis=0)
    fig, ax = plt.subplots(figsize=(1.0 * steps + 1.5, 0.95 * len(rows) + 0.6))
    ax.imshow(img, interpolation="nearest")
    ax.set_yticks(np.arange(len(rows)) * 64 + 32, names, fontsize=8)
    ax.set_xticks(np.arange(steps) * 67 + 32, [str(s + 1) for s in range(steps)])
    ax.set_xlabel("dreamt step (same start frame, same true actions)")
    fig.tight_layout()
    fig.savefig(out_dir / "payoff_rollouts.png", dpi=90)
    plt.close(fig)
