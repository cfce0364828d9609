"""Evaluate chapter 2 on held-out bouncing-balls videos (a seed never seen in training).

    uv run validate.py
    uv run validate.py --checkpoint checkpoints/dynamics.pt --quick
    uv run validate.py --data ~/my_videos     # the held-out end of your own videos (see video_folder.py)
    uv run validate.py --out /tmp/run1        # reads /tmp/run1/checkpoints, writes /tmp/run1/outputs

From 3 true context frames, every model rolls out 20 frames open loop (feeding itself its own
predictions; the rollouts and measurements are in evaluate.py). Printed and saved to
outputs/metrics.json: pixel MSE and ball-centroid error per horizon for each model and for the
copy-last-frame and constant-velocity baselines; teacher forcing against open loop; context 1 against
context 3; the ball error split by what each ball does within the horizon (straight flight, wall
bounce, overlap: diagnose.py). Pictures: outputs/rollouts.gif
(truth | prediction | error), outputs/error_vs_horizon.png, outputs/diagnosis.png. On your own video
(--data) there are no balls to track: only the pixel MSE is measured, against copy-last-frame, and
there are no targets.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from diagnose import diagnose, print_diagnosis, save_picture, simulate_states
from evaluate import CONTEXT, HORIZON, MAIN, measure
from PIL import Image, ImageDraw

from data_utils import load_videos, video_array
from models import FSQAutoencoder, LatentDynamics
from utils import (
    UserError,
    command,
    exit_on_user_error,
    given_flags,
    load_checkpoint,
    output_root,
    pick_device,
    seed_everything,
    set_threads,
)

HELDOUT_SEED_OFFSET = 10_000
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

    checkpoint: str = ""  # "": <out>/checkpoints/dynamics.pt, the file train.py writes
    n_videos: int = 200  # held-out videos (your own video: at most this many held-out clips)
    threads: int = 0  # torch threads; 0: the cores free right now
    seed: int = 0
    device: str = "auto"
    quick: bool = False
    data: str = ""  # a folder of your own videos or frames: evaluate on its held-out end
    out: str = ""  # output root: reads checkpoints/ and data/, writes outputs/; "": this chapter's folder


def parse_args(argv=None) -> ValConfig:
    """Command-line flags -> ValConfig."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--checkpoint", default="", help="written by train.py (default: <out>/checkpoints/dynamics.pt)"
    )
    p.add_argument("--n-videos", type=int, default=200, help="held-out videos (default: 200)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: 0, the cores free now)")
    p.add_argument("--seed", type=int, default=0, help="held-out videos use seed + 10000 (default: 0)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--quick", action="store_true", help="8 held-out videos (unless --n-videos is given)")
    p.add_argument("--data", default="", help="a folder of your own videos or frames (default: the balls)")
    p.add_argument("--out", default="", help="output root for data/, checkpoints/, outputs/ (default: here)")
    cfg = ValConfig(**vars(p.parse_args(argv)))
    if cfg.quick and "n_videos" not in given_flags(p, argv):
        cfg.n_videos = 8  # a smoke run: enough videos for the GIF (4) and some balls to sort
    if cfg.n_videos < 4:  # the GIF shows four videos
        raise UserError(f"--n-videos must be at least 4 (got {cfg.n_videos})")
    return cfg


def save_gif(truth: np.ndarray, pred: np.ndarray, path: Path, n: int = 4) -> None:
    """outputs/rollouts.gif: rows of held-out videos, columns truth | dream | |error|, upscaled 3x, with
    the column names and the horizon written above."""
    frames, n = [], min(n, len(truth))
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
        if np.isfinite(err).all():  # NaN on your own video: no balls to track
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


def held_out_videos(cfg: ValConfig, tcfg: dict, data_dir: Path) -> np.ndarray:
    """(B, C+H, 64, 64, 3) uint8: simulated videos from seed + 10,000 (never trained on), or with --data
    the held-out clips (the end) of your own videos, cut as train.py cut the rest (its --video-len)."""
    if cfg.data:
        from video_folder import load_video_folder  # OpenCV is only needed for your own video

        ds = load_video_folder(cfg.data, tcfg["video_len"], data_dir=data_dir, quiet=True)["heldout"]
        return video_array(ds)[: cfg.n_videos]  # clips of video_folder.EVAL_LEN = CONTEXT + HORIZON frames
    seed = cfg.seed + HELDOUT_SEED_OFFSET
    return video_array(load_videos(cfg.n_videos, CONTEXT + HORIZON, seed=seed, quiet=True, data_dir=data_dir))


def main(argv=None) -> None:
    """Load the checkpoint, roll out every model on held-out videos, print and save metrics and pictures."""
    cfg = parse_args(argv)
    set_threads(cfg.threads)
    t0 = time.time()
    root = output_root(cfg.out)
    out_dir = root / "outputs"
    device = pick_device(cfg.device)
    seed_everything(cfg.seed)
    if cfg.checkpoint:  # a path the user typed: a missing file is more likely a typo
        path, train_cmd = Path(cfg.checkpoint), ""
    else:  # the file train.py writes under the same output root
        again = [*(["--data", cfg.data] if cfg.data else []), *(["--out", cfg.out] if cfg.out else [])]
        path, train_cmd = root / "checkpoints" / "dynamics.pt", command("train.py", *again)
    ckpt = load_checkpoint(path, "latent-dynamics", train_cmd)
    codec, models = build_models(ckpt, path, device)
    videos = held_out_videos(cfg, ckpt["config"], root / "data")
    balls = not cfg.data  # your own video has no coloured balls to track
    metrics, baselines, curves, preds, tf_err = measure(
        codec, models, videos, ckpt["config"]["levels"], device, balls
    )
    hists = ckpt.get("loss_history", {})
    out_dir.mkdir(parents=True, exist_ok=True)
    table = {}
    if balls:  # the diagnosis: the error split by what each ball does (straight, wall bounce, overlap)
        states = simulate_states(cfg.n_videos, CONTEXT + HORIZON, seed=cfg.seed + HELDOUT_SEED_OFFSET)
        split = {name: preds[name] for name in (MAIN, "constant_velocity", "codec_floor")}
        truth = videos[:, CONTEXT:].astype(np.float32) / 255.0
        table = diagnose(split, truth, videos, states, CONTEXT)
        save_picture(table, hists, out_dir / "diagnosis.png")
    save_gif(videos[:, CONTEXT:].astype(np.float32) / 255.0, preds[MAIN], out_dir / "rollouts.gif")
    save_plot(curves, out_dir / "error_vs_horizon.png")
    # the targets are the lesson's numbers on the bouncing balls; your own video has none
    targets = {k: list(v) for k, v in TARGETS.items()} if balls else {}
    ok = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b}
    passed = all(ok[op](metrics[k], t) for k, (op, t) in targets.items()) if balls else None
    report = {
        "chapter": "2.latent-dynamics",
        "quick": cfg.quick,
        "device": str(device),
        "data": cfg.data or "simulated balls",
        "train_seconds": round(float(ckpt["train_seconds"]), 1),
        "metrics": metrics,
        "baselines": baselines,
        "targets": targets,
        "passed": passed,
        "diagnosis": {f"h{h}": v for h, v in table.items()},
    }
    (out_dir / "metrics.json").write_text(json.dumps(report, indent=2))
    print_tables(metrics, curves, tf_err, hists)
    if balls:
        print_diagnosis(table, hists)
    else:
        print(
            "\nyour own video: no balls to track, so ball errors, constant velocity and diagnosis are skipped"
        )
    if cfg.quick:
        print("\nsmoke run (--quick): this checks the plumbing; the numbers are not the lesson's")
    verdict = "none for your own video" if passed is None else "PASSED" if passed else "NOT met"
    seconds = f"train seconds {ckpt['train_seconds']:.0f}, validate seconds {time.time() - t0:.0f}"
    print(f"\n{seconds}; targets {verdict}")
    pictures = f"rollouts.gif{', diagnosis.png' if balls else ''} and error_vs_horizon.png"
    print(f"wrote {out_dir / 'metrics.json'}, {pictures} in {out_dir}")


def print_tables(metrics: dict, curves: dict, tf_err: np.ndarray, hists: dict) -> None:
    """Print the targets table and the error-vs-horizon table (models and baselines side by side, with
    each model's training steps and seconds). Without balls (your own video) only the pixel MSE."""
    balls = "constant_velocity" in curves
    cl, ef = curves["copy_last"], curves["empty_frame"]
    base = {"mse_h10_over_copy_last": f"empty_frame {ef[0][9] / cl[0][9]:.3f}"}
    if balls:  # the same number for the simple alternatives, where one exists
        cv = curves["constant_velocity"]
        base = {
            "mse_h10_over_copy_last": (
                f"constant_velocity {cv[0][9] / cl[0][9]:.3f}, empty_frame {ef[0][9] / cl[0][9]:.3f}"
            ),
            "mse_h10_over_empty_frame": f"constant_velocity {cv[0][9] / ef[0][9]:.3f}",
            "ball_err_h5_px": f"copy_last {cl[1][4]:.2f}, constant_velocity {cv[1][4]:.2f}",
            "ball_err_h5_over_constant_velocity": f"copy_last {cl[1][4] / cv[1][4]:.2f}",
            "ball_err_h10_over_constant_velocity": f"copy_last {cl[1][9] / cv[1][9]:.2f}",
            "ball_err_h1_ctx3_px": f"copy_last {cl[1][0]:.2f}, constant_velocity {cv[1][0]:.2f}",
        }
    print(f"\n{'metric':35s} {'value':>9s} {'target':>9s}   baseline")
    for k, v in metrics.items():
        tgt = f"{TARGETS[k][0]} {TARGETS[k][1]:g}" if k in TARGETS and balls else ""
        print(f"{k:35s} {v:9.3f} {tgt:>9s}   {base.get(k, '')}".rstrip())
    what = "ball centroid error (px) | pixel MSE x1000" if balls else "pixel MSE x1000 (no balls to track)"
    print(f"\n{what}, open loop from {CONTEXT} true frames")
    print(f"{'horizon':22s}" + "".join(f"{h:>15d}" for h in (1, 5, 10, 20)) + "   trained")
    for name, (mse, err) in curves.items():
        row = f"{name:22s}"
        for h in (1, 5, 10, 20):  # on your own video the ball column stays blank
            row += (f"{err[h - 1]:7.2f}" if balls else " " * 7) + f" |{mse[h - 1] * 1000:6.2f}"
        if name in hists:  # steps and seconds: the comparison is at equal steps, and says what they cost
            row += f"   {hists[name]['step'][-1] + 1} steps, {hists[name]['seconds']:.0f} s"
        print(row)
    if balls:
        tf = "".join(f"{tf_err[h - 1]:7.2f} |{'':6s}" for h in (1, 5, 10, 20))
        print(f"{'teacher forced (main)':22s}{tf}")


if __name__ == "__main__":
    exit_on_user_error(main)
