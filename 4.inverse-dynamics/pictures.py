"""The pictures: train.py's loss curves, and validate.py's LAM code <-> action table, frame pairs with
their inferred actions, and the pay-off's dreams beside the truth.

Shape key: N trajectories, T frames, K latent-action codes, S rollout steps.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import patheffects

from data_utils import ACTION_NAMES, add_overlay, locate_object
from models import perplexity

TITLES = {
    "lam": "default LAM (FSQ 3x3, batch-norm, weighted MSE)",
    "lam_no_norm": "without batch-norm",
    "lam_vq": "VQ codebook of 8 instead of FSQ",
    "lam_plain_mse": "plain MSE instead of weighted",
}


def save_confusion(codes: dict, actions: torch.Tensor, models: dict, ckpt: dict, out_dir) -> None:
    """out_dir/lam_confusion.png: for the LAM (and its ablations), how often each code meets each true action.

    codes: {"lam": (B,), "lam_no_norm": (B,), ...} code indices of the held-out pairs; actions: (B,) true.
    """
    fig, axes = plt.subplots(1, len(codes), figsize=(4.6 * len(codes), 4.5), squeeze=False)
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
        ax.set_title(f"{TITLES.get(name, name)}\nperplexity {perplexity(c, k):.2f} of {k}", fontsize=9)
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


def save_dreams(wall: dict, dreams: dict, labels: dict, out_dir, n_show: int = 3) -> None:
    """out_dir/payoff_dreams.png: the point mass's true path and each pay-off model's 10-step dream of it.

    wall: held-out data with "frames" (N, T, 64, 64, 3) and "positions" (N, T, 2); dreams: {source: (N, S,
    2) dreamt positions}, all from the true start under the true pushes; labels: {source: legend text}.
    """
    fig, axes = plt.subplots(1, n_show, figsize=(4.2 * n_show, 4.9), squeeze=False)
    for i, ax in enumerate(axes[0]):
        ax.imshow(wall["frames"][i, 0], interpolation="nearest")  # the start frame, in pixel coordinates
        truth = wall["positions"][i]  # (T, 2)
        outline = [patheffects.Stroke(linewidth=4, foreground="black"), patheffects.Normal()]
        ax.plot(truth[:, 0], truth[:, 1], "w.-", lw=2.5, label="truth (simulator)", path_effects=outline)
        # (the black outline keeps the white line visible in the legend, on the figure's white background)
        paths = [truth]
        for s, path in dreams.items():
            p = np.concatenate([truth[:1], path[i]])  # (S+1, 2), from the shared start
            ax.plot(p[:, 0], p[:, 1], ".-", lw=1.3, ms=4, label=labels.get(s, s))
            paths.append(p)
        lo, hi = np.concatenate(paths).min(0) - 4, np.concatenate(paths).max(0) + 4  # zoom on the paths
        side = max(hi - lo) / 2
        mid = np.clip((lo + hi) / 2, side - 0.5, 63.5 - side)  # stay inside the frame
        ax.set(xlim=(mid[0] - side, mid[0] + side), ylim=(mid[1] + side, mid[1] - side), xticks=[], yticks=[])
        ax.set_title(f"held-out trajectory {i}: 10 pushes (zoomed)", fontsize=9)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=3, fontsize=8)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(out_dir / "payoff_dreams.png", dpi=100)
    plt.close(fig)


def save_loss_plot(hists: dict, out_dir) -> None:
    """out_dir/train_loss.png: every stage's loss against step, and the LAM's code perplexity."""
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.5))
    groups = {"IDM / overlay (cross-entropy, MSE)": ("idm", "overlay"), "LAM (decoder loss)": ("lam",)}
    groups["pay-off dynamics (squared px)"] = ("dyn",)
    for ax, (title, prefixes) in zip(axes, groups.items(), strict=False):
        for name, h in hists.items():
            if name.startswith(prefixes) and not (name.startswith("dyn") and not name.endswith("@0")):
                ax.plot(h["step"], h["loss"], label=name)  # the pay-off's: its first dynamics seed only
        ax.set(title=title, xlabel="step", yscale="log")
        ax.legend(fontsize=7)
    for name, h in hists.items():
        if "perplexity" in h:
            axes[3].plot(h["step"], h["perplexity"], label=name)
    axes[3].set(title="LAM code perplexity (1 = collapse)", xlabel="step")
    axes[3].legend(fontsize=7)
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "train_loss.png", dpi=100)
    plt.close(fig)
