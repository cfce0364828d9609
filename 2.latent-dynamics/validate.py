"""Evaluate chapter 2 on held-out bouncing-balls videos (a seed never seen in training).

    uv run validate.py
    uv run validate.py --checkpoint checkpoints/dynamics.pt --quick

From 3 true context frames, every model rolls out 20 frames open loop (feeding itself its own
predictions). Printed and saved to outputs/metrics.json: pixel MSE and ball-centroid error per horizon
for each model and for the copy-last-frame and constant-velocity baselines; teacher forcing against
open loop; context 1 against context 3; the ball error split by what each ball does within the
horizon (straight flight, wall bounce, overlap: diagnose.py). Pictures: outputs/rollouts.gif
(truth | prediction | error), outputs/error_vs_horizon.png, outputs/diagnosis.png.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from diagnose import diagnose, print_diagnosis, save_picture, simulate_states
from PIL import Image, ImageDraw
from tqdm import tqdm

from data_utils import BALL_COLOURS, ball_error, load_videos, locate_balls, soft_disc
from models import FSQAutoencoder, LatentDynamics, latents_to_tokens, snap_to_grid, tokens_to_latents
from utils import (
    CKPT_DIR,
    OUT_DIR,
    UserError,
    exit_on_user_error,
    given_flags,
    load_checkpoint,
    pick_device,
    seed_everything,
    set_threads,
)

CONTEXT, HORIZON = 3, 20  # true frames shown, frames dreamed
HELDOUT_SEED_OFFSET = 10_000
MAIN = "regression_rollout"  # the model the targets are measured on
TARGETS = {
    "mse_h10_over_copy_last": ("<=", 0.5),
    "ball_err_h5_px": ("<=", 2.0),
    "ball_err_h5_over_constant_velocity": ("<=", 0.8),
    "ball_err_h10_over_constant_velocity": ("<=", 0.8),
    "mse_h10_over_empty_frame": ("<", 1.0),
    "ctx1_over_ctx3_ball_err_h1": (">=", 1.5),
}


@dataclass
class ValConfig:
    """Validation settings (each is a flag)."""

    checkpoint: str = str(CKPT_DIR / "dynamics.pt")
    n_videos: int = 200  # held-out videos
    threads: int = 0  # torch threads; 0: the cores free right now
    seed: int = 0
    device: str = "auto"
    quick: bool = False


def parse_args(argv=None) -> ValConfig:
    """Command-line flags -> ValConfig."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=ValConfig.checkpoint, help="written by train.py")
    p.add_argument("--n-videos", type=int, default=200, help="held-out videos (default: 200)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: 0, the cores free now)")
    p.add_argument("--seed", type=int, default=0, help="held-out videos use seed + 10000 (default: 0)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--quick", action="store_true", help="20 held-out videos (unless --n-videos is given)")
    cfg = ValConfig(**vars(p.parse_args(argv)))
    if cfg.quick and "n_videos" not in given_flags(p, argv):
        cfg.n_videos = 20
    if cfg.n_videos < 4:  # the GIF shows four videos
        raise UserError(f"--n-videos must be at least 4 (got {cfg.n_videos})")
    return cfg


@torch.no_grad()
def decode(codec: FSQAutoencoder, tok: torch.Tensor) -> np.ndarray:
    """Tokens (B, T, N, P), continuous or codes -> frames (B, T, 64, 64, 3) float in [0, 1]."""
    b, t = tok.shape[:2]
    levels = [int(lv) for lv in codec.fsq.levels]
    zq = tokens_to_latents(snap_to_grid(tok, levels))  # (B, T, D, 16, 16) the decoder reads codes only
    frames = codec.decode(zq.flatten(0, 1)).clamp(0, 1)  # (B*T, 3, 64, 64)
    return frames.permute(0, 2, 3, 1).reshape(b, t, 64, 64, 3).cpu().numpy()


@torch.no_grad()
def rollout(model: LatentDynamics, context: torch.Tensor, steps: int, desc: str = "dream") -> torch.Tensor:
    """Open loop: context tokens (B, C, N, P) -> (B, steps, N, P), each step fed the model's own output."""
    seq = context
    for _ in tqdm(range(steps), desc=desc, leave=False):
        seq = torch.cat([seq, model.predict_next(seq)[:, None]], dim=1)
    return seq[:, context.shape[1] :]


@torch.no_grad()
def teacher_forced(model: LatentDynamics, tokens: torch.Tensor, steps: int) -> torch.Tensor:
    """One-step predictions with a *true* context of CONTEXT frames for each of ``steps`` targets."""
    preds = [
        model.predict_next(tokens[:, k : CONTEXT + k])
        for k in tqdm(range(steps), desc="teacher forced (main)", leave=False)
    ]
    return torch.stack(preds, dim=1)  # (B, steps, N, P)


def constant_velocity(videos: np.ndarray, steps: int) -> np.ndarray:
    """Pixel-space baseline: find each ball in the last two context frames, keep its velocity, redraw it.

    No bounces: it knows motion but not walls. Returns (B, steps, 64, 64, 3) float in [0, 1].
    """
    c1, f1 = locate_balls(videos[:, CONTEXT - 2])
    c2, f2 = locate_balls(videos[:, CONTEXT - 1])
    frame = videos[:, CONTEXT - 1].astype(np.float32) / 255.0
    out = np.zeros((len(videos), steps, 64, 64, 3), dtype=np.float32)
    for i in range(len(videos)):
        for c in np.flatnonzero(f1[i] & f2[i]):
            mass = (np.abs(frame[i] - BALL_COLOURS[c] / 255.0).sum(-1) < 0.3).sum()  # pixels of this ball
            radius = max(np.sqrt(mass / np.pi) - 0.2, 1.0)
            vel = c2[i, c] - c1[i, c]
            for h in range(steps):
                x, y = c2[i, c] + vel * (h + 1)
                out[i, h] = np.maximum(
                    out[i, h], soft_disc(64, x, y, radius)[..., None] * BALL_COLOURS[c] / 255.0
                )
    return out


def horizon_metrics(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per horizon: mean pixel MSE and mean ball-centroid error (px). pred/truth (B, H, 64, 64, 3)."""
    mse = ((pred - truth) ** 2).mean(axis=(0, 2, 3, 4))
    err = np.array([ball_error(pred[:, h], truth[:, h]).mean() for h in range(truth.shape[1])])
    return mse, err


def save_gif(truth: np.ndarray, pred: np.ndarray, path: Path, n: int = 4) -> None:
    """outputs/rollouts.gif: rows of held-out videos, columns truth | dream | |error|, upscaled 3x, with
    the column names and the horizon written above."""
    frames = []
    for h in range(truth.shape[1]):
        rows = [
            np.concatenate([truth[i, h], pred[i, h], np.abs(truth[i, h] - pred[i, h])], axis=1)
            for i in range(n)
        ]
        img = (np.concatenate(rows, axis=0) * 255).astype(np.uint8)
        big = Image.fromarray(img).resize((img.shape[1] * 3, img.shape[0] * 3), Image.NEAREST)
        frame = Image.new("RGB", (big.width, big.height + 16), "white")  # a label strip on top
        frame.paste(big, (0, 16))
        draw = ImageDraw.Draw(frame)
        for col, label in enumerate(("truth", f"dream ({MAIN})", "|error|")):
            draw.text((col * 192 + 4, 2), label + (f"  t+{h + 1}" if col == 0 else ""), fill="black")
        frames.append(frame)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=200, loop=0)


def save_plot(curves: dict, path: Path) -> None:
    """outputs/error_vs_horizon.png: ball error and pixel MSE against horizon for every model/baseline."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    h = np.arange(1, HORIZON + 1)
    for name, (mse, err) in curves.items():
        style = "--" if name in ("copy_last", "constant_velocity", "codec_floor", "empty_frame") else "-"
        axes[0].plot(h, err, style, label=name)
        axes[1].plot(h, mse, style, label=name)
    axes[0].set(xlabel="horizon (frames)", ylabel="ball centroid error (px)", title="where are the balls?")
    axes[1].set(xlabel="horizon (frames)", ylabel="pixel MSE", title="how different is the frame?")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def build_models(ckpt: dict, path: str, device) -> tuple[FSQAutoencoder, dict]:
    """The codec and the three dynamics models of a checkpoint; a checkpoint written by an older version
    of this chapter (other shapes or names) is a one-line UserError, not a traceback."""
    try:
        tcfg = ckpt["config"]
        codec = FSQAutoencoder(tuple(tcfg["levels"]), ch=tcfg["codec_ch"])
        codec.load_state_dict(ckpt["codec"])
        models = {}
        for name, head in (
            ("regression_tf", "regression"),
            ("regression_rollout", "regression"),
            ("classification", "classification"),
        ):
            context = tcfg["clip_len"] - 1  # the model reads at most this many frames
            m = LatentDynamics(head, tcfg["levels"], dim=tcfg["dim"], depth=tcfg["depth"], max_frames=context)
            m.load_state_dict(ckpt[name])
            models[name] = m.to(device).eval()
    except (KeyError, RuntimeError) as e:
        raise UserError(
            f"{path} does not match this chapter's models ({type(e).__name__}); re-run train.py"
        ) from e
    return codec.to(device).eval(), models


def main(argv=None) -> None:
    """Load the checkpoint, roll out every model on held-out videos, print and save metrics and pictures."""
    cfg = parse_args(argv)
    set_threads(cfg.threads)
    t0 = time.time()
    device = pick_device(cfg.device)
    seed_everything(cfg.seed)
    ckpt = load_checkpoint(cfg.checkpoint, "latent-dynamics")
    codec, models = build_models(ckpt, cfg.checkpoint, device)
    videos = load_videos(cfg.n_videos, CONTEXT + HORIZON, seed=cfg.seed + HELDOUT_SEED_OFFSET, quiet=True)
    truth = videos[:, CONTEXT:].astype(np.float32) / 255.0  # (B, H, 64, 64, 3) what really happens
    with torch.no_grad():
        flat = torch.from_numpy(videos.reshape(-1, 64, 64, 3)).permute(0, 3, 1, 2).to(device).float() / 255.0
        z = torch.cat(
            [
                codec.encode_continuous(flat[i : i + 500])
                for i in tqdm(range(0, len(flat), 500), desc="encode")
            ]
        )
    tokens = latents_to_tokens(z.view(len(videos), -1, 4, 16, 16))  # (B, C+H, N, P) before rounding
    codes = snap_to_grid(tokens, ckpt["config"]["levels"])  # (B, C+H, N, P) the FSQ codes

    floor = decode(codec, codes[:, CONTEXT:])  # (B, H, 64, 64, 3) the true future through the codec
    curves = {"codec_floor": horizon_metrics(floor, truth)}
    preds = {}
    for name, model in models.items():  # regression reads continuous latents, classification codes
        inp = tokens if model.head_kind == "regression" else codes
        preds[name] = decode(codec, rollout(model, inp[:, :CONTEXT], HORIZON, desc=f"dream ({name})"))
        curves[name] = horizon_metrics(preds[name], truth)
    tf_mse, tf_err = horizon_metrics(decode(codec, teacher_forced(models[MAIN], tokens, HORIZON)), truth)
    last = np.repeat(videos[:, CONTEXT - 1 : CONTEXT].astype(np.float32) / 255.0, HORIZON, axis=1)
    curves["copy_last"] = horizon_metrics(last, truth)
    cv = constant_velocity(videos, HORIZON)
    curves["constant_velocity"] = horizon_metrics(cv, truth)
    curves["empty_frame"] = horizon_metrics(np.zeros_like(truth), truth)  # every ball erased
    # context 1 vs 4: one-step prediction of the same frame from only its predecessor, or from four frames
    ctx1 = decode(codec, models[MAIN].predict_next(tokens[:, CONTEXT - 1 : CONTEXT])[:, None])
    ctx1_err = ball_error(ctx1[:, 0], truth[:, 0]).mean()

    mse, err = curves[MAIN]
    cv_err = curves["constant_velocity"][1]
    metrics = {
        "mse_h10_over_copy_last": float(mse[9] / curves["copy_last"][0][9]),
        "mse_h10_over_empty_frame": float(mse[9] / curves["empty_frame"][0][9]),
        "ball_err_h5_px": float(err[4]),
        "ball_err_h5_over_constant_velocity": float(err[4] / cv_err[4]),
        "ball_err_h10_over_constant_velocity": float(err[9] / cv_err[9]),
        "ctx1_over_ctx3_ball_err_h1": float(ctx1_err / err[0]),
        "ball_err_h1_ctx1_px": float(ctx1_err),
        "ball_err_h1_ctx3_px": float(err[0]),
    }
    baselines = {}
    for name, (m_mse, m_err) in curves.items():
        for h in (1, 5, 10, 20):
            key_m, key_e = f"pixel_mse_h{h}", f"ball_err_h{h}_px"
            target = metrics if name == MAIN else baselines
            target[key_m if name == MAIN else f"{key_m}/{name}"] = float(m_mse[h - 1])
            target[key_e if name == MAIN else f"{key_e}/{name}"] = float(m_err[h - 1])
    for name in ("constant_velocity", "empty_frame"):
        baselines[f"mse_h10_over_copy_last/{name}"] = float(curves[name][0][9] / curves["copy_last"][0][9])
    for h in (5, 10, 20):  # teacher forcing: every step gets a true context (not available when dreaming)
        baselines[f"ball_err_h{h}_px/teacher_forced"] = float(tf_err[h - 1])

    # the diagnosis: the error split by what each ball does (straight, wall bounce, overlap); diagnose.py
    states = simulate_states(cfg.n_videos, CONTEXT + HORIZON, seed=cfg.seed + HELDOUT_SEED_OFFSET)
    split = {MAIN: preds[MAIN], "constant_velocity": cv, "codec_floor": floor}
    table = diagnose(split, truth, videos, states, CONTEXT)
    hists = ckpt.get("loss_history", {})

    OUT_DIR.mkdir(exist_ok=True)
    save_picture(table, hists, OUT_DIR / "diagnosis.png")
    save_gif(truth, preds[MAIN], OUT_DIR / "rollouts.gif")
    save_plot(curves, OUT_DIR / "error_vs_horizon.png")
    targets = {k: list(v) for k, v in TARGETS.items()}
    ok = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b}
    passed = all(ok[op](metrics[k], t) for k, (op, t) in targets.items())
    report = {
        "chapter": "2.latent-dynamics",
        "quick": cfg.quick,
        "device": str(device),
        "train_seconds": round(float(ckpt["train_seconds"]), 1),
        "metrics": metrics,
        "baselines": baselines,
        "targets": targets,
        "passed": passed,
        "diagnosis": {f"h{h}": v for h, v in table.items()},
    }
    (OUT_DIR / "metrics.json").write_text(json.dumps(report, indent=2))
    print_tables(metrics, curves, tf_err, hists)
    print_diagnosis(table, hists)
    if cfg.quick:
        print("\nsmoke run (--quick): this checks the plumbing; the numbers are not the lesson's")
    print(f"\ntrain seconds {ckpt['train_seconds']:.0f}, validate seconds {time.time() - t0:.0f}; "
          f"targets {'PASSED' if passed else 'NOT met'}")  # fmt: skip
    print(
        f"wrote {OUT_DIR / 'metrics.json'}, rollouts.gif, error_vs_horizon.png and diagnosis.png in {OUT_DIR}"
    )


def print_tables(metrics: dict, curves: dict, tf_err: np.ndarray, hists: dict) -> None:
    """Print the targets table and the error-vs-horizon table (models and baselines side by side, with
    each model's training steps and seconds)."""
    cl, cv, ef = curves["copy_last"], curves["constant_velocity"], curves["empty_frame"]
    base = {  # the same number for the simple alternatives, where one exists
        "mse_h10_over_copy_last": (
            f"constant_velocity {cv[0][9] / cl[0][9]:.3f}, empty_frame {ef[0][9] / cl[0][9]:.3f}"
        ),
        "mse_h10_over_empty_frame": f"constant_velocity {cv[0][9] / ef[0][9]:.3f}",
        "ball_err_h5_px": f"copy_last {cl[1][4]:.2f}, constant_velocity {cv[1][4]:.2f}",
        "ball_err_h5_over_constant_velocity": f"copy_last {cl[1][4] / cv[1][4]:.2f}",
        "ball_err_h10_over_constant_velocity": f"copy_last {cl[1][9] / cv[1][9]:.2f}",
        "ball_err_h1_ctx3_px": f"copy_last {cl[1][0]:.2f}, constant_velocity {cv[1][0]:.2f}",
    }
    print(f"\n{'metric':32s} {'value':>9s} {'target':>9s}   baseline")
    for k, v in metrics.items():
        tgt = f"{TARGETS[k][0]} {TARGETS[k][1]:g}" if k in TARGETS else ""
        print(f"{k:32s} {v:9.3f} {tgt:>9s}   {base.get(k, '')}".rstrip())
    print(f"\nball centroid error (px) | pixel MSE x1000, open loop from {CONTEXT} true frames")
    print(f"{'horizon':22s}" + "".join(f"{h:>15d}" for h in (1, 5, 10, 20)) + "   trained")
    for name, (mse, err) in curves.items():
        row = f"{name:22s}" + "".join(f"{err[h - 1]:7.2f} |{mse[h - 1] * 1000:6.2f}" for h in (1, 5, 10, 20))
        if name in hists:  # steps and seconds: the comparison is at equal steps, and says what they cost
            row += f"   {hists[name]['step'][-1] + 1} steps, {hists[name]['seconds']:.0f} s"
        print(row)
    print(
        f"{'teacher forced (main)':22s}" + "".join(f"{tf_err[h - 1]:7.2f} |{'':6s}" for h in (1, 5, 10, 20))
    )


if __name__ == "__main__":
    exit_on_user_error(main)
