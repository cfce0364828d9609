"""The picture of validate.py: held-out questions, the world model's imagined frames beside the truth,
and the answers of the VLM alone and of the fused model.

Shape key: N samples, K imagined steps, H/W frame side.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import stages
import torch
from evaluate import true_frame

from data_utils import answer_text, question_text


@torch.no_grad()
def save_answers(
    fused, qa: dict, answers: dict, device, out_dir: Path, name: str = "fusion_answers.png", n: int = 6
) -> Path:
    """<out_dir>/<name> (returned): one row per question: the frame, the world model's decoded
    rollout (t = 1..K), the true final frame, and the question with the VLM's, the fused model's and the
    true answer.

    answers: {"vlm": [...], "fused": [...]} future-question answers for every held-out sample.
    """
    K = qa["actions"].shape[1]
    blocked = np.flatnonzero(qa["blocked"])[
        : n // 2
    ]  # show futures where a wall or the border stopped a move
    pick = np.concatenate([blocked, np.setdiff1d(np.arange(len(qa["frames"])), blocked)[: n - len(blocked)]])
    frames = stages.as_float(stages.to_tensor(qa["frames"][pick]), device)
    z = fused.world_model.rollout(
        frames, torch.from_numpy(qa["actions"][pick]).long().to(device)
    )  # (n, K+1, G, C)
    imagined = fused.world_model.decode(z[:, 1:].flatten(0, 1)).clamp(0, 1)  # (n*K, 3, H, W)
    imagined = imagined.view(len(pick), K, *imagined.shape[1:]).permute(0, 1, 3, 4, 2).cpu().numpy()
    fig, axes = plt.subplots(len(pick), K + 3, figsize=(2.0 * (K + 3) + 3, 2.1 * len(pick)))
    for r, i in enumerate(pick):
        row = axes[r]
        row[0].imshow(qa["frames"][i])
        row[0].set_title("now" if r == 0 else "", fontsize=9)
        for t in range(K):
            row[1 + t].imshow(imagined[r, t])
            if r == 0:
                row[1 + t].set_title(f"imagined t={t + 1}", fontsize=9)
        row[K + 1].imshow(true_frame(qa["end"][i]))
        row[K + 1].set_title("true t=K" if r == 0 else "", fontsize=9)
        truth = answer_text(qa["future"][i])
        ok = {k: "✓" if answers[k][i] == truth else "✗" for k in ("vlm", "fused")}
        text = (
            f"{question_text('future', qa['actions'][i])}\n"
            f"VLM alone: {answers['vlm'][i]} {ok['vlm']}\n"
            f"fused (k={K}): {answers['fused'][i]} {ok['fused']}\n"
            f"truth: {truth}" + ("  (a wall stopped a move)" if qa["blocked"][i] else "")
        )
        row[K + 2].text(0, 0.5, text, fontsize=8, va="center", family="monospace")
        for ax in row:
            ax.axis("off")
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / name, dpi=90)
    plt.close(fig)
    return out_dir / name
