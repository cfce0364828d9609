"""validate.py's pictures: masks over a clip, the collapse monitor, the energy landscape, executed plans."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from models import multiblock_mask


def save_masks(clip: np.ndarray, path, seed: int = 0) -> None:
    """A clip (T, 64, 64, 3) uint8 and two masks (short- and long-range) drawn over it: hidden tokens grey."""
    rng = np.random.default_rng(seed)
    masks = [
        multiblock_mask((len(clip) // 2, 8, 8), rng),
        multiblock_mask((len(clip) // 2, 8, 8), rng, 2, (0.7, 0.7)),
    ]
    fig, ax = plt.subplots(3, len(clip), figsize=(1.4 * len(clip), 4.6))
    for t, frame in enumerate(clip):
        ax[0, t].imshow(frame)
        for row, mask in enumerate(masks, 1):
            hidden = np.kron(mask[t // 2], np.ones((8, 8), dtype=bool))  # (64, 64) token -> pixels
            ax[row, t].imshow(np.where(hidden[..., None], 90, frame).astype(np.uint8))
        ax[0, t].set_title(f"t={t}", fontsize=8)
    for row, name in enumerate(
        ("clip", f"8 blocks: {masks[0].mean():.0%} hidden", f"2 blocks: {masks[1].mean():.0%}")
    ):
        ax[row, 0].set_ylabel(name, fontsize=8)
    for a in ax.flat:
        a.set_xticks([]), a.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_collapse(logs: dict, path) -> None:
    """The collapse monitor of both training runs, relative to step 0."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, log in (("V-JEPA (EMA + stop-grad)", logs["jepa"]), ("no EMA, no stop-grad", logs["ablation"])):
        s = np.asarray(log["spread"])
        ax.plot(s / s[0], label=name)
    ax.axhline(0.2, color="grey", ls="--", label="20 % of step 0")
    ax.set(xlabel="step", ylabel="target-feature std / step 0", yscale="log", title="collapse monitor")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def save_energy(energy: np.ndarray, start, goal, path) -> None:
    """The energy over a 2-D action slice (one (dx, dy) held for the horizon); the goal direction marked."""
    fig, ax = plt.subplots(figsize=(4.6, 4))
    im = ax.imshow(energy, extent=(-1, 1, 1, -1), cmap="viridis")  # rows: dy (down is +), cols: dx
    d = np.asarray(goal) - np.asarray(start)
    d = d / max(np.abs(d).max(), 1e-6)
    ax.plot([0, d[0]], [0, d[1]], "r-", lw=2, label="towards the goal")
    iy, ix = np.unravel_index(energy.argmin(), energy.shape)
    g = np.linspace(-1, 1, energy.shape[0])
    ax.plot(g[ix], g[iy], "w*", ms=12, label="lowest energy")
    ax.set(xlabel="dx", ylabel="dy", title="energy landscape")
    ax.legend(fontsize=7, loc="lower right")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def save_plans(
    frames: np.ndarray, goals: np.ndarray, success: np.ndarray, path, n: int = 4, cols: int = 8
) -> None:
    """Executed MPC episodes (B, steps+1, 64, 64, 3): ``cols`` frames per row, the goal circled in white."""
    n = min(n, len(frames))
    idx = np.linspace(0, frames.shape[1] - 1, cols).round().astype(int)
    fig, ax = plt.subplots(n, cols, figsize=(1.3 * cols, 1.4 * n), squeeze=False)
    for i in range(n):
        for j, t in enumerate(idx):
            ax[i, j].imshow(frames[i, t])
            ax[i, j].add_patch(plt.Circle(goals[i] * 64 - 0.5, 3.2, fill=False, color="white", lw=1))
            ax[i, j].set_xticks([]), ax[i, j].set_yticks([])
            ax[0, j].set_title(f"step {t}", fontsize=8)
        ax[i, 0].set_ylabel("reached" if success[i] else "missed", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
