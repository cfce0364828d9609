"""validate.py's pictures: masks over a clip, the collapse monitor, executed plans beside the goal image."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from models import multiblock_mask


def save_masks(clip: np.ndarray, path, grid: tuple[int, int, int], seed: int = 0) -> None:
    """A clip (T, 64, 64, 3) uint8 and two masks (short- and long-range) on the token ``grid`` (t, h, w)
    drawn over it: hidden tokens grey."""
    rng = np.random.default_rng(seed)
    masks = [multiblock_mask(grid, rng), multiblock_mask(grid, rng, 2, (0.7, 0.7))]
    px = clip.shape[1] // grid[1]  # pixels per token side
    fig, ax = plt.subplots(3, len(clip), figsize=(1.4 * len(clip), 4.6))
    for t, frame in enumerate(clip):
        ax[0, t].imshow(frame)
        for row, mask in enumerate(masks, 1):
            hidden = np.kron(mask[t // 2], np.ones((px, px), dtype=bool))  # (64, 64) token -> pixels
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


def save_plans(run: dict, path, n: int = 4, cols: int = 7) -> None:
    """Executed MPC episodes: ``cols`` frames of each of ``n`` episodes, then the goal image (another
    scene). ``run`` from evaluate.goal_reaching: "frames" (B, steps+1, 64, 64, 3), "goal_frames",
    "success"."""
    frames, n = run["frames"], min(n, len(run["frames"]))
    idx = np.linspace(0, frames.shape[1] - 1, cols).round().astype(int)
    fig, ax = plt.subplots(n, cols + 1, figsize=(1.3 * (cols + 1), 1.4 * n), squeeze=False)
    for i in range(n):
        for j, t in enumerate(idx):
            ax[i, j].imshow(frames[i, t])
            ax[0, j].set_title(f"step {t}", fontsize=8)
        ax[i, cols].imshow(run["goal_frames"][i])
        ax[i, 0].set_ylabel("reached" if run["success"][i] else "missed", fontsize=8)
    ax[0, cols].set_title("goal image", fontsize=8)
    for a in ax.flat:
        a.set_xticks([]), a.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
