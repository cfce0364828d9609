"""The pictures validate.py writes: the decoded rollout (GIF and strip) and the goal-reaching episodes.

Shape key: B trajectories or episodes, T frames; frames are (64, 64, 3) uint8.
"""

from __future__ import annotations

import cv2
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image


def _label(img: np.ndarray, text: str, width: int = 110) -> np.ndarray:
    """Put a white margin of ``width`` px with ``text`` left of an RGB image (H, W, 3)."""
    margin = np.full((img.shape[0], width, 3), 255, np.uint8)
    cv2.putText(
        margin, text, (4, img.shape[0] // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA
    )
    return np.concatenate([margin, img], axis=1)


def save_rollout_gif(truth: np.ndarray, dream: np.ndarray, path, scale: int = 3) -> None:
    """A GIF: each frame shows the truth (top row) above the decoded rollout (bottom row), for a few
    trajectories side by side, labelled, with the step. truth, dream: (B, T, 64, 64, 3) uint8."""
    b, t = truth.shape[:2]
    pad = lambda x: np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), constant_values=255)  # noqa: E731
    images = []
    for i in range(t):
        rows = []
        for v, name in ((truth, "truth"), (dream, "decoded dream")):
            row = np.concatenate(list(pad(v[:, i])), axis=1).repeat(scale, 0).repeat(scale, 1)
            rows.append(_label(row, name if name == "truth" or i else "start (encoded)"))
        img = np.concatenate(rows, axis=0)
        cv2.putText(img, f"step {i}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        images.append(Image.fromarray(img))
    images[0].save(path, save_all=True, append_images=images[1:], duration=400, loop=0)


def save_rollout_strip(truth: np.ndarray, dream: np.ndarray, path) -> None:
    """outputs/rollout.png: trajectory 0, the truth above the decoded open-loop rollout, step by step."""
    t = truth.shape[1]
    fig, axes = plt.subplots(2, t, figsize=(1.1 * t, 2.6), squeeze=False)
    for j in range(t):
        for i, (v, name) in enumerate(((truth, "truth"), (dream, "decoded\nrollout"))):
            axes[i, j].imshow(v[0, j], interpolation="nearest")
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
            if j == 0:
                axes[i, j].set_ylabel(name, fontsize=8)
        axes[0, j].set_title(f"t={j}", fontsize=8)
    fig.suptitle("Open loop in DINO feature space from one true frame (decoded only to look)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def save_goal_picture(reach: dict, tasks: list, path, n: int = 4) -> None:
    """outputs/goal_reaching.png: for ``n`` episodes, the executed frames every 4 steps and the goal
    image (another scene), with the goal's end-effector circled on every frame."""
    from data_utils import end_effector

    frames, n = reach["frames"], min(n, len(tasks))
    idx = list(range(0, frames.shape[1], 4)) + ([frames.shape[1] - 1] if (frames.shape[1] - 1) % 4 else [])
    fig, axes = plt.subplots(n, len(idx) + 1, figsize=(1.3 * (len(idx) + 1), 1.45 * n), squeeze=False)
    for i in range(n):
        ee = end_effector(tasks[i]["q_goal"]) * 64 - 0.5
        for j, img in enumerate([frames[i, t] for t in idx] + [reach["goal_frames"][i]]):
            ax = axes[i, j]
            ax.imshow(img, interpolation="nearest")
            ax.add_patch(plt.Circle(ee, 0.06 * 64, fill=False, color="lime", lw=1.2))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title("goal image" if j == len(idx) else f"step {idx[j]}", fontsize=8)
        axes[i, 0].set_ylabel("reached" if reach["success"][i] else "missed", fontsize=8)
    fig.suptitle(
        "CEM-MPC with our DINO features; green: the success circle around the goal's hand", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def save_world_picture(frames: np.ndarray, frames_alt: np.ndarray, path, n: int = 4, t: int = 6) -> None:
    """outputs/world.png: ``n`` training episodes, ``t`` frames each (frames (N, T, 64, 64, 3)), and below
    each row the same poses rendered under another scene: DINO's two views."""
    fig, axes = plt.subplots(2 * n, t, figsize=(1.1 * t, 2.3 * n), squeeze=False)
    for i in range(n):
        for j in range(t):
            for k, (v, name) in enumerate(((frames, f"episode {i}"), (frames_alt, "other scene"))):
                ax = axes[2 * i + k, j]
                ax.imshow(v[i, j], interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if j == 0:
                    ax.set_ylabel(name, fontsize=7)
                if i == 0 and k == 0:
                    ax.set_title(f"t={j}", fontsize=8)
    fig.suptitle("The arm with nuisance: each episode, and the same poses under another scene", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
