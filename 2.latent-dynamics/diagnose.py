"""Where does the open-loop ball error come from? Split it by what each ball does within the horizon.

validate.py calls these after its rollouts; nothing here trains or dreams.

Every ball of every held-out video is put in one of three groups at a horizon h, from the simulator's
own record of the video (re-simulated with the same seed, so this uses the truth only to *sort* balls,
never to predict them):
- straight: no wall bounce and no overlap with another ball from the last two context frames to h;
- wall bounce: the ball's velocity flips at a wall in that window (constant velocity cannot know it);
- overlap: the ball's disc touches another ball's. The simulator has no ball-ball collisions (balls
  pass through each other), but where they overlap the picture mixes their colours.
For each group: the mean per-ball centroid error of a prediction (a lost ball counts as its distance to
the frame centre, as in ``data_utils.ball_error``), the share of balls the prediction lost, and, for
straight flight, the *travel ratio*: how far the predicted ball moved along the true path, as a
fraction of how far the true ball moved (1.0: no lag; 0.8: the ball is 20 % behind).

Shape key: B videos, T frames, K balls of a video, H horizon.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from data_utils import locate_balls, seeded_balls

GROUPS = ("straight", "wall bounce", "overlap")


def simulate_states(n: int, length: int, seed: int) -> list[dict]:
    """The positions and velocities behind ``data_utils.make_videos(n, length, seed)``, video by video,
    read from the env's ``info`` along the same loop over ``env.reset``/``env.step``.

    Returns one dict per video: colour (K,), radius (K,), pos (T, K, 2), vel (T, K, 2); vel[t] is the
    velocity after the step that produced frame t.
    """
    env, states = seeded_balls(seed), []
    for _ in range(n):  # the same calls in the same order as make_videos: the same random draws
        _, info = env.reset()
        pos, vel = [info["pos"]], [info["vel"]]
        for _ in range(1, length):
            *_, info = env.step(0)
            pos.append(info["pos"])
            vel.append(info["vel"])
        states.append(
            {"colour": info["colour"], "radius": info["radius"], "pos": np.stack(pos), "vel": np.stack(vel)}
        )
    return states


def ball_groups(states: list[dict], context: int, h: int) -> list[np.ndarray]:
    """Per video, the group index (0 straight, 1 wall bounce, 2 overlap) of each ball at horizon h.

    The window runs from the step into the last context frame (which constant velocity reads) to frame
    context - 1 + h.
    """
    out = []
    for s in states:
        window = slice(context - 2, context + h)  # frames context-2 .. context-1+h
        vel = s["vel"][window]  # (W, K, 2)
        bounce = (np.sign(vel[1:]) != np.sign(vel[:1])).any(axis=(0, 2))  # (K,) a component flipped
        pos = s["pos"][window]  # (W, K, 2)
        gap = np.linalg.norm(pos[:, :, None] - pos[:, None], axis=-1)  # (W, K, K) centre distances
        touch = gap < (s["radius"][:, None] + s["radius"][None, :] + 1.0)
        touch[:, np.arange(len(s["radius"])), np.arange(len(s["radius"]))] = False
        overlap = touch.any(axis=(0, 2))  # (K,)
        out.append(np.where(overlap, 2, np.where(bounce, 1, 0)))
    return out


def split_errors(pred: np.ndarray, truth: np.ndarray, last: np.ndarray, groups: list[np.ndarray], states):
    """Per-ball errors of one predicted frame per video, grouped.

    Args: pred, truth (B, 64, 64, 3) the frames at horizon h; last (B, 64, 64, 3) the last true context
        frame (the start of the travel); groups from ``ball_groups``; states from ``simulate_states``.
    Returns: {group: dict(n, err, lost, travel)} with the mean error (px), the lost share and the travel
        ratio (straight flight only, balls the prediction still shows).
    """
    cp, fp = locate_balls(pred)
    ct, ft = locate_balls(truth)
    c0, f0 = locate_balls(last)
    centre = (truth.shape[1] - 1) / 2
    rows = {g: {"err": [], "lost": [], "proj": [], "dist2": []} for g in GROUPS}
    for i, (s, grp) in enumerate(zip(states, groups, strict=True)):
        for c, g in zip(s["colour"], grp, strict=True):
            if not ft[i, c]:  # hidden behind another ball in the truth: ball_error skips it too
                continue
            p = cp[i, c] if fp[i, c] else np.full(2, centre)
            r = rows[GROUPS[g]]
            r["err"].append(np.linalg.norm(p - ct[i, c]))
            r["lost"].append(not fp[i, c])
            if fp[i, c] and f0[i, c]:
                d = ct[i, c] - c0[i, c]  # true travel since the last context frame
                r["proj"].append((cp[i, c] - c0[i, c]) @ d)
                r["dist2"].append(d @ d)
    return {
        g: {
            "n": len(r["err"]),
            "err": float(np.mean(r["err"])) if r["err"] else float("nan"),
            "lost": float(np.mean(r["lost"])) if r["lost"] else float("nan"),
            "travel": float(np.sum(r["proj"]) / np.sum(r["dist2"])) if r["dist2"] else float("nan"),
        }
        for g, r in rows.items()
    }


def loss_trend(hist: dict) -> float:
    """Relative change of the training loss over the last 20 % of the steps (mean of the last tenth of
    the logged losses against the tenth before the last fifth): -0.05 means it still fell by 5 %."""
    loss = np.asarray(hist["loss"])
    if len(loss) < 3:  # a smoke run logs too few points to tell
        return float("nan")
    k = max(1, len(loss) // 10)
    return float(loss[-k:].mean() / loss[-3 * k : -2 * k].mean() - 1.0)


def save_picture(table: dict, hists: dict, path) -> None:
    """outputs/diagnosis.png: the error by group (bars) at each horizon, and the training loss curves."""
    horizons = sorted(table)
    fig, axes = plt.subplots(1, len(horizons) + 1, figsize=(5 * (len(horizons) + 1), 3.6))
    for ax, h in zip(axes, horizons, strict=False):
        names = list(table[h])
        x = np.arange(len(GROUPS))
        for j, name in enumerate(names):
            vals = [table[h][name][g]["err"] for g in GROUPS]
            ax.bar(x + (j - (len(names) - 1) / 2) * 0.8 / len(names), vals, 0.8 / len(names), label=name)
        share = [table[h][names[0]][g]["n"] for g in GROUPS]
        ax.set_xticks(x, [f"{g}\n({n} balls)" for g, n in zip(GROUPS, share, strict=True)])
        ax.set(ylabel="ball error (px)", title=f"open loop, horizon {h}")
        ax.legend(fontsize=7)
    for name, h in hists.items():
        axes[-1].plot(h["step"], h["loss"], label=name, lw=0.8)
    axes[-1].set(xlabel="step", ylabel="training loss", yscale="log", title="is the loss still falling?")
    if hists:
        axes[-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def diagnose(preds: dict, truth: np.ndarray, videos: np.ndarray, states, context: int, horizons=(5, 10)):
    """{h: {name: split_errors(...)}} for every prediction in ``preds`` (name -> (B, H, 64, 64, 3))."""
    table = {}
    for h in horizons:
        groups = ball_groups(states, context, h)
        table[h] = {
            name: split_errors(p[:, h - 1], truth[:, h - 1], videos[:, context - 1], groups, states)
            for name, p in preds.items()
        }
    return table


def print_diagnosis(table: dict, hists: dict) -> None:
    """Print the error by group (mean px, and the share of balls lost) and the travel ratio."""
    names = list(next(iter(table.values())))
    print("\nwhere the open-loop ball error comes from: mean px per ball (lost %), by what the ball does")
    print(f"{'horizon  group':24s}{'balls':>6s}" + "".join(f"{n:>22s}" for n in names))
    for h, by_name in table.items():
        for g in GROUPS:
            cells = "".join(
                f"{by_name[n][g]['err']:13.2f} ({100 * by_name[n][g]['lost']:4.1f}%)" for n in names
            )
            print(f"h{h:<3d}     {g:15s}{by_name[names[0]][g]['n']:6d}{cells}")
        travel = "".join(f"{by_name[n]['straight']['travel']:22.2f}" for n in names)
        print(f"h{h:<3d}     {'travel ratio':15s}{'':6s}{travel}")
    for name, hist in hists.items():
        steps, ms = hist["step"][-1] + 1, 1000 * hist["seconds"] / (hist["step"][-1] + 1)
        print(
            f"training loss of {name}: {100 * loss_trend(hist):+.1f} % over the last 20 % of its {steps}"
            f" steps ({ms:.0f} ms per step)"
        )
