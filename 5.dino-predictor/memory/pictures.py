"""Part 2's pictures: recall against the gap, and the return frame as each predictor imagines it.

Shape key: G gaps (1..12), S steps from the return; frames (24, 24, 3) uint8.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .world import A_FRAMES, MAX_GAP, return_frame


def save_recall_plot(results: dict, forget: dict, names: dict, capacity: int, chance: float, path) -> None:
    """Left: recall of room A's object on the return frame against the gap G, one line per predictor,
    with chance and the lookup bank's capacity. Right: the neural memory's recall against the retention
    (1 - alpha)^(G - 3), for the trained decay and faster ones set at test time."""
    g = np.arange(1, MAX_GAP + 1)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    for name, r in results.items():
        style = {"ls": ":", "color": "grey"} if name not in names else {"marker": "o", "ms": 4}
        ax.plot(g, r["recall"][:, 0], label=names.get(name, "read-out of the true frame"), **style)
    ax.axhline(chance, color="k", lw=0.8, ls="--", label="chance (1/54)")
    ax.axvline(capacity + 2.5, color="tab:green", lw=0.8, ls="--", label="lookup bank: A evicted")
    ax.axvspan(0.5, 2.5, color="0.92", zorder=0)
    ax.text(1.5, 0.5, "A still in\nthe context", ha="center", fontsize=7)
    ax.set(xlabel="gap G (frames in room B)", ylabel="recall (colour and cell)", ylim=(-0.02, 1.05),
           xticks=g, title="recall of room A's object on the return frame")  # fmt: skip
    ax.legend(fontsize=7, loc="center right")
    for alpha, f in forget.items():  # the same trained memory, forgetting faster at test time
        far = g >= A_FRAMES  # beyond the context: only the memory can answer
        ax2.plot(f["retention"][far], f["recall"][far], "o-", ms=4, label=f"decay alpha {alpha:g}")
    ax2.set(xlabel="retention (1 - alpha)^(G - 3) of room A's writes at the return", ylabel="recall",
            ylim=(-0.02, 1.05), title="neural memory: recall against what its decay keeps")  # fmt: skip
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def save_return_picture(data: dict, examples: dict, names: dict, path, gaps=(2, 4, 8, 12)) -> None:
    """Rows: one held-out episode per gap. Columns: the last frame of room A before the gap, the true
    return frame, then the return frame decoded from each predictor's prediction."""
    cols = ["room A before the gap", "truth (return)", *[names.get(k, k) for k in examples]]
    fig, axes = plt.subplots(len(gaps), len(cols), figsize=(1.6 * len(cols), 1.7 * len(gaps)))
    for row, gap in enumerate(gaps):
        i = int(np.flatnonzero(data["gap"] == gap)[0]) if (data["gap"] == gap).any() else 0
        gap = int(data["gap"][i])
        images = [data["frames"][i, A_FRAMES - 1], data["frames"][i, return_frame(gap)]]
        images += [ex[i] for ex in examples.values()]
        for col, img in enumerate(images):
            ax = axes[row, col]
            ax.imshow(img, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(cols[col].replace(" + ", "\n+ ").replace(" (", "\n("), fontsize=7)
            if col == 0:
                ax.set_ylabel(f"G = {gap}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
