"""The pictures validate.py writes: executed plans as GIFs with the goal drawn in, the CEM cost falling
over its iterations, and one plan as imagined by the model beside what the true simulator did with it."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw

from data_utils import SIZE, PointMassRoom

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

GOAL_COLOUR = np.array([60, 220, 60], dtype=np.uint8)  # green ring = the goal


def draw_goal(frame: np.ndarray, goal, radius: float = 0.06) -> np.ndarray:
    """A copy of frame (64, 64, 3) with a green ring of the success radius around the goal (x, y)."""
    out = frame.copy()
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    d = np.hypot((xs + 0.5) / SIZE - goal[0], (ys + 0.5) / SIZE - goal[1])  # (H, W) arena units
    out[np.abs(d - radius) < 0.6 / SIZE] = GOAL_COLOUR
    return out


def save_episode_gifs(episodes: list[tuple[str, str, dict, np.ndarray]], path: Path, scale: int = 3) -> None:
    """One GIF with a tile per episode: the executed path, the goal ring, and the goal image beside it;
    above each tile, the room and the planner that drove it.

    Args:
        episodes: (world, planner name, run_episode's result, goal (2,)) per tile, same number of steps.
    """
    tiles_per_t = []
    n = max(len(r["positions"]) for _, _, r, _ in episodes)
    for t in range(n):
        row = []
        for world, _, r, goal in episodes:
            env = PointMassRoom(world)
            pos = r["positions"][min(t, len(r["positions"]) - 1)]
            now = draw_goal(env.render(pos), goal)
            row.append(np.concatenate([now, np.full((SIZE, 2, 3), 255, np.uint8), r["goal_frame"]], axis=1))
            row.append(np.full((SIZE, 4, 3), 255, np.uint8))
        tiles_per_t.append(np.concatenate(row, axis=1))
    frames, tile_w = [], (2 * SIZE + 2 + 4) * scale  # a tile: now | goal image | gap
    for t, f in enumerate(tiles_per_t):
        big = Image.fromarray(f).resize((f.shape[1] * scale, f.shape[0] * scale), Image.NEAREST)
        frame = Image.new("RGB", (big.width, big.height + 28), "white")  # two label lines on top
        frame.paste(big, (0, 28))
        draw = ImageDraw.Draw(frame)
        for i, (world, planner, _, _) in enumerate(episodes):
            draw.text((i * tile_w + 2, 2), f"{world}: {planner}", fill="black")
            draw.text((i * tile_w + 2, 15), f"step {min(t, n - 1)}", fill="black")
            draw.text((i * tile_w + (SIZE + 2) * scale + 2, 15), "goal image", fill="black")
        frames.append(frame)
    frames[0].save(path, save_all=True, append_images=frames[1:] + [frames[-1]] * 5, duration=150, loop=0)


def save_cost_curve(histories: dict[str, list[list[float]]], path: Path) -> None:
    """The best elite's cost at each CEM iteration of the first plan, one faint line per episode and the
    median in bold, per planner (the cost falls as the Gaussian narrows onto a good plan)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for (name, hs), colour in zip(histories.items(), ("tab:blue", "tab:orange", "tab:green"), strict=False):
        hs = np.array([h for h in hs if len(h) == len(hs[0])])  # (episodes, iterations)
        for h in hs[:20]:
            ax.plot(np.arange(1, len(h) + 1), h, color=colour, alpha=0.15, lw=0.8)
        ax.plot(np.arange(1, hs.shape[1] + 1), np.median(hs, 0), color=colour, lw=2, label=f"{name} (median)")
    ax.set(
        xlabel="iteration",
        ylabel="best cost so far (summed over the horizon)",
        title="CEM: cost per iteration",
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_imagined_vs_true(cases: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]], path: Path) -> None:
    """Each panel: a room, the model's imagined path for a plan (dashed) and the true path the simulator
    takes with the same actions (solid): the ground truth beside the prediction.

    Args:
        cases: (world, imagined (H+1, 2), true (H+1, 2), goal (2,)) per panel.
    """
    fig, axes = plt.subplots(1, len(cases), figsize=(3 * len(cases), 3.2), squeeze=False)
    for ax, (world, imagined, true, goal) in zip(axes[0], cases, strict=True):
        ax.imshow(PointMassRoom(world).render(true[0]), extent=(0, 1, 1, 0))
        ax.plot(*true.T, "w-o", ms=3, lw=1.5, label="true (simulator)")
        ax.plot(*imagined.T, "c--x", ms=4, lw=1.5, label="imagined (model)")
        ax.add_patch(plt.Circle(goal, 0.06, color="lime", fill=False, lw=1.5))
        ax.set(xticks=[], yticks=[], title=world)
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
