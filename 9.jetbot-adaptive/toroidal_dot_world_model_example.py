"""The adaptive world model on the toroidal dot, with a window (or view.png) showing what it thinks.

    uv run toroidal_dot_world_model_example.py --steps 500
    uv run toroidal_dot_world_model_example.py --steps 500 --no-display --record

It resumes from checkpoints/toroidal_dot/ when a checkpoint is there (the one train.py writes), so you
can watch a trained learner; --steps counts the total, as in train.py.
"""

from __future__ import annotations

import argparse

from adaptive_world_model import AdaptiveWorldModel
from config import AdaptiveWorldModelConfig
from robots import ToroidalDotConfig, ToroidalDotRobot
from runner.cli import close_and_stop

from utils import UserError, exit_on_user_error, set_threads


def parse_args(argv=None) -> argparse.Namespace:
    """The flags shared with part 1's examples, plus the learner's."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300, help="total loop steps (a resumed run continues)")
    p.add_argument("--no-display", action="store_true", help="no window: write view.png instead")
    p.add_argument("--record", action="store_true", help="record the session (part 1's RecordingRobot)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-dir", default=None, help="default: checkpoints/toroidal_dot")
    p.add_argument("--interactive", action="store_true", help="type each action (enter accepts the model's)")
    p.add_argument("--wandb-project", default=None, help="also log to Weights & Biases (if installed)")
    a = p.parse_args(argv)
    if a.steps <= 0:
        raise UserError(f"--steps must be positive, got {a.steps}")
    return a


def main(argv=None) -> None:
    """Build robot and learner, run, print prediction error against copy-last-frame."""
    a = parse_args(argv)
    set_threads()
    robot = ToroidalDotRobot(ToroidalDotConfig(seed=a.seed))
    cfg = AdaptiveWorldModelConfig.for_robot("toroidal_dot", AUTOENCODER_LR=1e-3, PREDICTOR_LR=1e-3)
    recorder = None
    if a.record:
        from recording import RecordingRobot

        robot = recorder = RecordingRobot(robot, max_disk_gb=cfg.RECORDING_MAX_GB, metadata={"seed": a.seed})
    try:
        learner = AdaptiveWorldModel(
            robot,
            checkpoint_dir=a.checkpoint_dir,
            config=cfg,
            seed=a.seed,
            display=not a.no_display and None,
            interactive=a.interactive,
            wandb_project=a.wandb_project,
        )
    except (ValueError, RuntimeError) as e:
        raise UserError(f"cannot resume: {str(e).splitlines()[0]}") from e
    stats = learner.run(a.steps)  # saves a checkpoint however it ends (Ctrl-C included)
    close_and_stop(robot, recorder, stats["stop_reason"])
    print(summary(learner, stats))


def summary(learner, stats: dict) -> str:
    """One line: steps, steps/s, and over all the recent scored predictions and over their second half
    (after the learner has had some steps to learn): the model's mean prediction error, the reported
    error (the last frame plus the trusted share of the model's change, learner_trust.py) with the mean
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


if __name__ == "__main__":
    exit_on_user_error(main)
