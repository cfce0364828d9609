"""Why planning from the energy works or fails, measured before any predictor: the energy's slope.

Adapted from chapter 5 (5.dino-predictor/landscape.py), with this chapter's energy (the L1 distance of
standardised per-frame features) in place of the squared distance. A planner can only descend an energy
that falls as the arm nears the goal pose. Two measurements, both *within one task* (one goal image;
candidate poses rendered under the start's scene, as the planner sees them):
    - the landscape: the energy to the goal image as the shoulder is turned away from the goal pose;
    - the rank correlation (Spearman) between energy and arm distance over random poses.

Shape key: M candidate poses, P patch tokens, D feature dim.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from training import encode_trajectories

from data_utils import Q2_LIMIT, joints, render_many

DELTAS = np.linspace(-1.5, 1.5, 61)  # shoulder offsets from the goal pose, radians


def arm_distance(q: np.ndarray, q_goal: np.ndarray) -> np.ndarray:
    """How far the body is from the goal pose: mean displacement of elbow and hand, frame units. (M,)"""
    _, e, h = joints(q)
    _, eg, hg = joints(q_goal)
    return 0.5 * (np.linalg.norm(e - eg, axis=-1) + np.linalg.norm(h - hg, axis=-1))


def energy(encoder, stats: dict, frames: np.ndarray, goal: np.ndarray, device) -> np.ndarray:
    """L1 energy (M,) between the standardised features of frames (M, 64, 64, 3) and a goal (1, 64, 64, 3)."""
    z = encode_trajectories(encoder, frames[:, None], device, stats)[:, 0]  # (M, P, D)
    zg = encode_trajectories(encoder, goal[:, None], device, stats)[:, 0]  # (1, P, D)
    return (z - zg).abs().mean(dim=(1, 2)).numpy()


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation of two (M,) arrays (no ties expected)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


@torch.no_grad()
def slope(encoder, stats: dict, tasks: list, device, n_poses: int = 60, seed: int = 0) -> float:
    """Mean over tasks of the Spearman correlation between energy and arm distance, for random poses
    rendered under the task's start scene against the goal image (rendered under its own)."""
    rng, rs = np.random.default_rng(seed), []
    for t in tasks:
        q = np.stack([rng.uniform(-np.pi, np.pi, n_poses), rng.uniform(-Q2_LIMIT, Q2_LIMIT, n_poses)], 1)
        goal = render_many(t["q_goal"][None], t["goal_scene"])
        e = energy(encoder, stats, render_many(q, t["start_scene"]), goal, device)
        rs.append(spearman(e, arm_distance(q, t["q_goal"])))
    return float(np.mean(rs))


@torch.no_grad()
def landscape(encoder, stats: dict, tasks: list, device) -> dict:
    """Energy against the shoulder's offset from the goal pose, normalised to [0, 1] per task, averaged.

    Returns {"same scene": (len(DELTAS),), "other scene": (len(DELTAS),)}: candidates rendered under the
    goal image's own nuisance, or under the start's (what the planner really compares).
    """
    out = {}
    for label, key in (("same scene", "goal_scene"), ("other scene", "start_scene")):
        curves = []
        for t in tasks:
            q = np.repeat(t["q_goal"][None], len(DELTAS), 0)
            q[:, 0] += DELTAS
            goal = render_many(t["q_goal"][None], t["goal_scene"])
            c = energy(encoder, stats, render_many(q, t[key]), goal, device)
            curves.append((c - c.min()) / (c.max() - c.min() + 1e-12))
        out[label] = np.mean(curves, 0)
    return out


def save_landscape(curves: dict, path) -> None:
    """outputs/energy_landscape.png: one panel per encoder, energy vs shoulder offset, both scenes."""
    fig, axes = plt.subplots(1, len(curves), figsize=(3.6 * len(curves), 3.2), sharey=True, squeeze=False)
    for ax, (name, c) in zip(axes[0], curves.items(), strict=True):
        ax.plot(DELTAS, c["same scene"], "--", label="candidates in the goal's own scene")
        ax.plot(DELTAS, c["other scene"], "-", label="candidates in another scene")
        ax.axvline(0, color="grey", lw=0.5)
        ax.set(title=name, xlabel="shoulder angle - goal's (rad)")
    axes[0, 0].set_ylabel("L1 energy to the goal image\n(normalised per task, mean)")
    axes[0, 0].legend(fontsize=7, loc="lower left")
    fig.suptitle("Energy landscape: does the energy fall towards the goal pose?")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
