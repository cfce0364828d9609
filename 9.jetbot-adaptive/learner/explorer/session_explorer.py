"""Look inside recorded sessions and the learner's checkpoints, one command at a time.

    cd learner/explorer                                 # or prefix each command with learner/explorer/
    uv run session_explorer.py sessions                          # list recorded sessions
    uv run session_explorer.py frames SESSION --start 0 --count 8 # frames to outputs/explorer/frames.png
    uv run session_explorer.py actions SESSION                    # action distribution: this vs all
    uv run session_explorer.py run SESSION --frame 5              # decode + predict stored frames
    uv run session_explorer.py sweep SESSION --frame 5            # every action's prediction, MSE
    uv run session_explorer.py attention SESSION --frame 5        # heatmaps, APA ALF TTAR RI@16 entropy
    uv run session_explorer.py counterfactual SESSION             # true vs shuffled vs zeroed actions
    uv run session_explorer.py gradflow SESSION                   # gradient reaching action parameters
    uv run session_explorer.py weights                            # histograms and layer norms
    uv run session_explorer.py train SESSION --frames 0-40 --steps 20   # train on chosen frames

SESSION is a session folder or its index in `sessions`. --checkpoint picks the learner checkpoint
folder (default: checkpoints/<robot of the session>). Pictures go to outputs/explorer/. The attention
metrics are the seed's, defined in learner/evaluation.py.
"""

# ruff: noqa: E402 - imports follow the sys.path line below
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the chapter folder: runs from any cwd

import argparse
from collections import Counter

import cv2
import numpy as np
import torch

from learner.explorer.analysis import attention_metrics, gradient_flow, predict_batch, session_samples
from learner.logs import to_image
from learner.persistence import load_latest, load_models
from learner.utils import HERE, UserError, exit_on_user_error, set_threads

OUT = HERE / "outputs" / "explorer"


def find_session(arg: str, root: Path) -> Path:
    """A session folder from a path or an index into the list of sessions under ``root``."""
    from robots.recording import RecordingReader

    sessions = RecordingReader.list_sessions(root)
    if arg.isdigit():
        if int(arg) >= len(sessions):
            raise UserError(f"there are {len(sessions)} sessions under {root}; index {arg} does not exist")
        return sessions[int(arg)]
    path = Path(arg)
    if not (path / "metadata.json").exists():
        raise UserError(f"{path} is not a recorded session (no metadata.json)")
    return path


def checkpoint_models(folder: Path, action_space: list[dict]) -> tuple:
    """(config, codec, predictor) from a learner checkpoint folder, one-line errors on failure."""
    try:
        cfg, codec, pred, _ = load_models(folder, len(action_space), log=lambda m: print(f"note: {m}"))
    except FileNotFoundError as e:
        raise UserError(f"no learner checkpoint in {folder}: train one first (train.py or an example)") from e
    except ValueError as e:
        raise UserError(str(e)) from e
    return cfg, codec, pred


def save_png(img: np.ndarray, name: str) -> Path:
    """Write an RGB image to outputs/explorer/<name> and return the path."""
    OUT.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(OUT / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return OUT / name


def row(tiles: list) -> np.ndarray:
    """Frames (3, S, S) side by side with a grey gap."""
    return np.concatenate(
        [np.pad(to_image(t), ((2, 2), (2, 2), (0, 0)), constant_values=90) for t in tiles], 1
    )


def cmd_actions(reader, root: Path) -> None:
    """Print the action distribution of this session beside the one of all sessions."""
    from robots.recording import RecordingReader

    def key(a):
        return ", ".join(f"{k}={v}" for k, v in sorted(a.items()))

    this = Counter(key(r["action"]) for r in reader.actions)
    everything = Counter()
    for s in RecordingReader.list_sessions(root):
        everything.update(key(r["action"]) for r in RecordingReader(s).actions)
    n1, n2 = max(sum(this.values()), 1), max(sum(everything.values()), 1)
    print(f"{'action':50s} {'this session':>14s} {'all sessions':>14s}")
    for k in sorted(set(this) | set(everything)):
        print(f"{k:50s} {this[k]:6d} {this[k] / n1:6.1%} {everything[k]:6d} {everything[k] / n2:6.1%}")


def main(argv=None) -> None:
    """Parse the command and run it."""
    global OUT
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument(
        "command",
        choices=[
            "sessions",
            "frames",
            "actions",
            "run",
            "sweep",
            "attention",
            "counterfactual",
            "gradflow",
            "weights",
            "train",
        ],
    )
    p.add_argument("session", nargs="?", default=None, help="session folder or index (see `sessions`)")
    p.add_argument("--root", default=None, help="where sessions live (default: part 1's saved/sessions)")
    p.add_argument("--checkpoint", default=None, help="learner checkpoint folder")
    p.add_argument("--frame", type=int, default=3, help="which recorded step to look at")
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--count", type=int, default=8)
    p.add_argument("--frames", default="0-40", help="train: range of recorded steps, e.g. 0-40")
    p.add_argument("--steps", type=int, default=20, help="train: optimisation steps")
    p.add_argument("--save", action="store_true", help="train: write the result back to the checkpoint")
    p.add_argument("--out", default=str(OUT), help="folder for the pictures")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default 0: the free cores)")
    a = p.parse_args(argv)
    OUT = Path(a.out)
    set_threads(a.threads)
    from robots.recording import DEFAULT_ROOT, RecordingReader

    root = Path(a.root) if a.root else DEFAULT_ROOT
    if a.command == "sessions":
        for i, s in enumerate(RecordingReader.list_sessions(root)):
            r = RecordingReader(s)
            print(f"{i:3d}  {r.robot_type:14s} {len(r):6d} actions  {r.num_observations:6d} frames  {s}")
        return
    if a.command != "weights" and a.session is None:
        raise UserError(f"`{a.command}` needs a SESSION (a folder, or an index from `sessions`)")
    reader = RecordingReader(find_session(a.session, root)) if a.session is not None else None
    if a.command == "frames":
        frames = [
            reader.observation(i) for i in range(a.start, min(a.start + a.count, reader.num_observations))
        ]
        if not frames:
            raise UserError(f"no frames from {a.start}: the session has {reader.num_observations}")
        print(f"wrote {save_png(np.concatenate(frames, axis=1), 'frames.png')}")
        return
    if a.command == "actions":
        cmd_actions(reader, root)
        return
    robot = reader.robot_type if reader else "toroidal_dot"
    ckpt = Path(a.checkpoint) if a.checkpoint else HERE / "checkpoints" / robot
    space = reader.action_space if reader else [{"action": 0}, {"action": 1}]
    cfg, codec, pred = checkpoint_models(ckpt, space)
    table = torch.tensor([[float(s.get(c, 0.0)) for c in cfg.ACTION_CHANNELS] for s in space])
    if a.command == "weights":
        return cmd_weights(codec, pred)
    data = session_samples(reader, space, cfg.MODEL_IMG_SIZE, cfg.PREDICTION_HISTORY_SIZE)
    if len(data["hist"]) == 0:
        raise UserError(f"the session has fewer than {cfg.PREDICTION_HISTORY_SIZE + 1} consecutive steps")
    i = min(max(a.frame - cfg.PREDICTION_HISTORY_SIZE + 1, 0), len(data["hist"]) - 1)
    if a.command in ("run", "sweep"):
        return cmd_sweep(a.command, codec, pred, table, data, i, space)
    if a.command == "attention":
        m, img = attention_metrics(codec, pred, table, data, i)
        print("  ".join(f"{k} {v:.3f}" for k, v in m.items()))
        print(f"wrote {save_png(img, 'attention.png')}")
        return
    if a.command == "counterfactual":
        idx = data["action_idx"]
        variants = {
            "true actions": idx,
            "shuffled actions": idx[torch.randperm(len(idx))],
            "zeroed actions": torch.zeros_like(idx),
        }
        print(f"{'actions fed to the predictor':30s} {'MSE vs actual':>14s}")
        for name, v in variants.items():
            pf = predict_batch(codec, pred, table, data["hist"], v)
            print(f"{name:30s} {float((pf - data['next']).pow(2).mean()):14.6f}")
        copy = float((data["hist"][:, -1] - data["next"]).pow(2).mean())
        print(f"{'copy last frame (baseline)':30s} {copy:14.6f}")
        return
    if a.command == "gradflow":
        for name, val in gradient_flow(codec, pred, table, data).items():
            print(f"{name:40s} {val:.3e}")
        return
    if a.command == "train":
        return cmd_train(a, cfg, codec, pred, table, data, ckpt)


def cmd_sweep(command, codec, pred, table, data, i, space) -> None:
    """`run`: reconstruction and the prediction for the recorded action; `sweep`: every action."""
    hist, nxt, taken = data["hist"][i : i + 1], data["next"][i], int(data["action_idx"][i, -1])
    with torch.no_grad():
        recon = codec.decode(codec.encode(hist[:, -1])).clamp(0, 1)[0]
    print(f"step {i}: reconstruction MSE {float((recon - hist[0, -1]).pow(2).mean()):.6f}")
    tiles = [hist[0, -1], recon, nxt]
    actions = range(len(space)) if command == "sweep" else [taken]
    for k in actions:
        v = data["action_idx"][i : i + 1].clone()
        v[0, -1] = k
        pf = predict_batch(codec, pred, table, hist, v)[0]
        mark = "  <- recorded" if k == taken else ""
        print(
            f"  action {k} {space[k]}: prediction MSE vs actual {float((pf - nxt).pow(2).mean()):.6f}{mark}"
        )
        tiles.append(pf)
    print(f"wrote {save_png(row(tiles), f'{command}.png')} (current | decoded | actual next | predictions)")


def cmd_weights(codec, pred) -> None:
    """Per-layer weight norms and a histogram of all weights of each model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = {"autoencoder": codec, "predictor": pred}
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 3))
    for ax, (name, m) in zip(np.atleast_1d(axes), models.items(), strict=False):
        for pname, w in ((n, p.detach()) for n, p in m.named_parameters()):
            if w.ndim > 1:
                print(f"{name}.{pname:50s} norm {float(w.norm()):8.3f}  std {float(w.std()):.4f}")
        ax.hist(torch.cat([w.detach().flatten() for w in m.parameters()]).numpy(), bins=100, log=True)
        ax.set_title(name)
    OUT.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(OUT / "weights.png", dpi=80)
    print(f"wrote {OUT / 'weights.png'}")


def cmd_train(a, cfg, codec, pred, table, data, ckpt: Path) -> None:
    """Train autoencoder and predictor on the chosen recorded steps; optionally save."""
    from models import decode_prediction, predictor_losses

    lo, _, hi = a.frames.partition("-")
    if not (lo.isdigit() and hi.isdigit()) or int(lo) >= int(hi):
        raise UserError(f"--frames must look like 0-40, got {a.frames!r}")
    sel = slice(int(lo), min(int(hi), len(data["hist"])))
    hist, nxt, idx = data["hist"][sel], data["next"][sel], data["action_idx"][sel]
    if len(hist) == 0:
        raise UserError(f"no recorded steps in {a.frames}")
    pred = pred.train()
    codec.train()
    opt = torch.optim.AdamW(list(codec.parameters()) + list(pred.parameters()), lr=cfg.PREDICTOR_LR)
    for step in range(a.steps):
        b, h = hist.shape[:2]
        z = codec.encode(hist.flatten(0, 1)).view(b, h, -1, codec.latent_dim)
        z_pred = pred(z, table[idx].reshape(b, h, -1))
        pf = decode_prediction(codec, z_pred, z[:, -1], hist[:, -1])
        losses = predictor_losses(
            pf, nxt, z_pred, codec.encode(nxt), pred.classifier(pf - hist[:, -1]), idx[:, -1], cfg.FG_WEIGHT
        )
        total = losses["total"] + codec.reconstruction_loss(hist[:, -1])[0]
        opt.zero_grad()
        total.backward()
        opt.step()
        if step % max(a.steps // 5, 1) == 0 or step == a.steps - 1:
            patch = float(losses["patch"].detach())
            print(f"step {step}: total {float(total.detach()):.5f} (patch {patch:.5f})")
    if a.save:
        from learner.persistence import save_set

        found = load_latest(ckpt)
        state, blobs, _ = found
        blobs["autoencoder"]["state_dict"] = codec.state_dict()
        blobs["predictor"]["state_dict"] = pred.state_dict()
        save_set(
            ckpt,
            {k: {kk: vv for kk, vv in v.items() if kk != "save_id"} for k, v in blobs.items()},
            {k: v for k, v in state.items() if k != "save_id"},
        )
        print(f"saved to {ckpt}")


if __name__ == "__main__":
    exit_on_user_error(main)
