"""Why planning from features works or fails, measured before any predictor: the cost's slope.

A planner can only descend a cost that falls as the arm nears the goal pose. Two measurements, both
*within one task* (one goal image; candidate poses rendered under the current episode's nuisance, as
the planner sees them):
    - the cost landscape: the feature distance to the goal image as one joint is turned away from the
      goal pose, for candidates under the goal image's own scene and under another scene (the V-JEPA 2
      paper's energy figure, in small);
    - the rank correlation (Spearman) between feature distance and arm distance over random poses at
      every distance from the goal.

Shape key: M candidate poses, N patch tokens, D feature dim.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from data_utils import Q2_LIMIT, joints, render_many

DELTAS = np.linspace(-1.5, 1.5, 61)  # joint offsets from the goal pose, radians


def arm_distance(q: np.ndarray, q_goal: np.ndarray) -> np.ndarray:
    """How far the body is from the goal pose: mean displacement of elbow and hand, frame units. (M,)"""
    _, e, h = joints(q)
    _, eg, hg = joints(q_goal)
    return 0.5 * (np.linalg.norm(e - eg, axis=-1) + np.linalg.norm(h - hg, axis=-1))


def _cost(encoder, frames: np.ndarray, goal: np.ndarray, device) -> np.ndarray:
    """Mean squared feature distance (M,) of frames (M, 64, 64, 3) to one goal frame (1, 64, 64, 3)."""
    z, zg = encoder.encode(frames, device), encoder.encode(goal, device)  # (M, N, D), (1, N, D)
    return (z - zg).pow(2).mean(dim=(1, 2)).numpy()


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation of two (M,) arrays (no ties expected)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


@torch.no_grad()
def slope(encoder, tasks: list, device, n_poses: int = 60, seed: int = 0) -> float:
    """Mean over tasks of the Spearman correlation between feature cost and arm distance, for random
    poses rendered under the task's start scene against the goal image (rendered under its own)."""
    rng, rs = np.random.default_rng(seed), []
    for t in tasks:
        q = np.stack([rng.uniform(-np.pi, np.pi, n_poses), rng.uniform(-Q2_LIMIT, Q2_LIMIT, n_poses)], 1)
        goal = render_many(t["q_goal"][None], t["goal_scene"])
        rs.append(
            spearman(
                _cost(encoder, render_many(q, t["start_scene"]), goal, device), arm_distance(q, t["q_goal"])
            )
        )
    return float(np.mean(rs))


@torch.no_grad()
def landscape(encoder, tasks: list, device, joint: int = 0) -> dict:
    """Cost against the offset of one joint from the goal pose, normalised to [0, 1] per task, averaged.

    Returns {"same scene": (len(DELTAS),), "other scene": (len(DELTAS),)}: candidates rendered under the
    goal image's own nuisance, or under the start's (what the planner really compares).
    """
    out = {}
    for label, key in (("same scene", "goal_scene"), ("other scene", "start_scene")):
        curves = []
        for t in tasks:
            q = np.repeat(t["q_goal"][None], len(DELTAS), 0)
            q[:, joint] += DELTAS
            c = _cost(
                encoder, render_many(q, t[key]), render_many(t["q_goal"][None], t["goal_scene"]), device
            )
            curves.append((c - c.min()) / (c.max() - c.min() + 1e-12))
        out[label] = np.mean(curves, 0)
    return out


def save_landscape(curves: dict, names: dict, path) -> None:
    """outputs/cost_landscape.png: one panel per encoder, cost vs shoulder offset, both scenes."""
    fig, axes = plt.subplots(1, len(curves), figsize=(3.6 * len(curves), 3.2), sharey=True, squeeze=False)
    for ax, (name, c) in zip(axes[0], curves.items(), strict=True):
        for label, style in (("same scene", "--"), ("other scene", "-")):
            text = (
                "candidates in the goal's own scene"
                if label == "same scene"
                else "candidates in another scene"
            )
            ax.plot(DELTAS, c[label], style, label=text)
        ax.axvline(0, color="grey", lw=0.5)
        ax.set(title=names[name], xlabel="shoulder angle - goal's (rad)")
    axes[0, 0].set_ylabel("distance to the goal image\n(normalised per task, mean)")
    axes[0, 0].legend(fontsize=7, loc="lower left")
    fig.suptitle("Cost landscape: does the feature distance fall towards the goal pose?")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
