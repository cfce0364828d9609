"""What the learner tells you while it runs: a JSONL of metrics, a dashboard PNG, the live view, and
(only when the package is installed and a project is named) Weights & Biases.

The view is four panels: the current frame | its decoded reconstruction (with the loss) | the last
prediction beside what actually happened (with the error) | the prediction for every action. It goes
to an OpenCV window when a display is available, otherwise to a PNG every DISPLAY_INTERVAL steps.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import torch


def has_display() -> bool:
    """True when a window can be opened (X11 or Wayland on Linux; always on macOS and Windows)."""
    if os.name == "nt" or os.uname().sysname == "Darwin":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class MetricsLogger:
    """Append one JSON object per logged step to ``metrics.jsonl``; mirror to wandb when asked."""

    def __init__(self, log_dir: Path, wandb_project: str | None = None, config: dict | None = None):
        """log_dir: folder of metrics.jsonl and dashboard.png; wandb_project: None keeps it local."""
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.log_dir / "metrics.jsonl"
        self.wandb = None
        if wandb_project:
            try:
                import wandb  # optional: not a dependency of this repository

                self.wandb = wandb.init(project=wandb_project, config=config or {})
            except ImportError:
                print("wandb is not installed: logging to metrics.jsonl only")

    def log(self, record: dict) -> None:
        """Write ``record`` (numbers, strings, None) as one line."""
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self.wandb is not None:
            self.wandb.log(
                {k: v for k, v in record.items() if isinstance(v, (int, float))}, step=record["step"]
            )

    def dashboard(self, out: Path | None = None) -> Path | None:
        """Plot every numeric series of metrics.jsonl against the step into dashboard.png."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        if not self.path.exists():
            return None
        rows = [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
        keys = sorted({k for r in rows for k, v in r.items() if isinstance(v, (int, float)) and k != "step"})
        if not rows or not keys:
            return None
        cols = 4
        fig, axes = plt.subplots(
            (len(keys) + cols - 1) // cols, cols, figsize=(16, 2.4 * ((len(keys) + 3) // 4))
        )
        for ax, k in zip(np.atleast_1d(axes).ravel(), keys, strict=False):
            pts = [(r["step"], r[k]) for r in rows if isinstance(r.get(k), (int, float))]
            ax.plot(*zip(*pts, strict=True), lw=1)
            ax.set_title(k, fontsize=8)
            if "loss" in k or "grad" in k or "ratio" in k and "mask" not in k:
                ax.set_yscale("log") if all(v > 0 for _, v in pts) else None
        fig.tight_layout()
        out = out or self.log_dir / "dashboard.png"
        fig.savefig(out, dpi=80)
        plt.close(fig)
        return out


def to_image(frame: torch.Tensor, scale: int = 3) -> np.ndarray:
    """(3, S, S) float -> (S*scale, S*scale, 3) uint8 RGB, nearest-neighbour enlarged."""
    img = (frame.detach().clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    return np.kron(img, np.ones((scale, scale, 1), dtype=np.uint8))


def label(img: np.ndarray, text: str) -> np.ndarray:
    """Write ``text`` in the top-left corner of an RGB image (a copy)."""
    img = img.copy()
    cv2.putText(img, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 200, 0), 1, cv2.LINE_AA)
    return img


def render_view(current, decoded, recon_loss, last_pred, actual, pred_err, per_action, names) -> np.ndarray:
    """The four-panel view as one RGB image.

    Args: current, decoded, actual: (3, S, S) or None; last_pred: (3, S, S) or None; per_action:
    list of (3, S, S) predictions, one per action, or []; names: their labels; recon_loss, pred_err:
    floats or None.
    """
    s = current.shape[-1] * 3
    blank = np.zeros((s, s, 3), dtype=np.uint8)
    panels = [label(to_image(current), "current")]
    panels.append(label(to_image(decoded), f"decoded {recon_loss:.4f}") if decoded is not None else blank)
    if last_pred is not None and actual is not None:
        panels.append(label(to_image(last_pred), f"predicted err {pred_err:.4f}"))
        panels.append(label(to_image(actual), "actual"))
    else:
        panels += [label(blank, "no prediction yet"), blank]
    for frame, name in zip(per_action, names, strict=False):
        panels.append(label(to_image(frame), f"if {name}"))
    gap = np.full((s, 4, 3), 80, dtype=np.uint8)
    row = [p for panel in panels for p in (panel, gap)][:-1]
    return np.concatenate(row, axis=1)


class Viewer:
    """Shows the view in a window when possible, else writes it to ``view.png`` when asked."""

    def __init__(self, out_dir: Path, display: bool | None = None):
        """out_dir: where view.png goes; display: None decides from the environment."""
        self.out_dir = Path(out_dir)
        self.window = has_display() if display is None else display

    def show(self, img: np.ndarray, save_png: bool) -> None:
        """img: (h, w, 3) RGB. A window refresh when there is a display; a PNG when ``save_png``."""
        if self.window:
            try:
                cv2.imshow("adaptive world model", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
                cv2.waitKey(1)
                return
            except cv2.error:
                self.window = False  # no GUI support after all: fall back to PNGs
        if save_png:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(self.out_dir / "view.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


def timing_stats(loop_times, exec_times) -> dict:
    """Loop steps per second and action-execution time statistics (ms) from recent durations (s)."""
    out = {}
    if loop_times:
        out["steps_per_second"] = len(loop_times) / sum(loop_times)
    if exec_times:
        t = np.array(exec_times) * 1000
        out.update(
            {
                "action_ms_mean": float(t.mean()),
                "action_ms_p95": float(np.percentile(t, 95)),
                "action_ms_max": float(t.max()),
            }
        )
    return out


def summary(learner, stats: dict) -> str:
    """One line: steps, steps/s, and over all the recent scored predictions and over their second half
    (after the learner has had some steps to learn): the model's mean prediction error, the reported
    error (the last frame plus the trusted share of the model's change, learner/trust.py) with the mean
    share, and the copy-last-frame error on the same steps. Each prediction is counted once."""
    rows = [
        (h["fresh_pred_error"], h.get("reported_error", h["fresh_pred_error"]), h["copy_last_error"])
        + (h.get("model_share", 1.0),)  # (entries from before the share: the model, unscaled)
        for h in learner.history
        if "copy_last_error" in h
    ]

    def compare(rs) -> str:
        pe, ge, ce, share = (sum(x[i] for x in rs) / max(len(rs), 1) for i in range(4))
        # the difference to copy-last in percent: at 5 decimals a tiny win would look like a tie
        v = [
            f"{100 * (e - ce) / max(ce, 1e-12):+.2f} %, {'beats' if e < ce else 'does not beat'}"
            for e in (pe, ge)
        ]
        return (
            f"model {pe:.5f} ({v[0]}), reported {ge:.5f} ({v[1]}; mean share of the model's change "
            f"{share:.2f}) vs copy-last-frame {ce:.5f}"
        )

    half = len(rows) // 2
    return (
        f"{stats['steps']} steps ({stats['stop_reason']}), {stats.get('steps_per_second', 0):.2f} steps/s; "
        f"prediction error over the last {len(rows)} predictions: {compare(rows)}; over the last "
        f"{len(rows) - half}: {compare(rows[half:])}; checkpoint {learner.checkpoint_dir}"
    )
