"""The adaptive world model on the toroidal dot, with a window (or view.png) showing what it thinks.

    uv run examples/toroidal_dot_world_model_example.py --steps 500
    uv run examples/toroidal_dot_world_model_example.py --steps 500 --no-display --record

It resumes from checkpoints/toroidal_dot/ when a checkpoint is there (the one train.py writes), so you
can watch a trained learner; --steps counts the total, as in train.py.
"""

# ruff: noqa: E402 - imports follow the sys.path line below
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the chapter folder: runs from any cwd

import argparse

from config import AdaptiveWorldModelConfig
from learner import AdaptiveWorldModel
from learner.logs import summary
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
    p.add_argument("--threads", type=int, default=0, help="torch threads (default 0: the free cores)")
    a = p.parse_args(argv)
    if a.steps <= 0:
        raise UserError(f"--steps must be positive, got {a.steps}")
    return a


def main(argv=None) -> None:
    """Build robot and learner, run, print prediction error against copy-last-frame."""
    a = parse_args(argv)
    set_threads(a.threads)  # first line of output
    robot = ToroidalDotRobot(ToroidalDotConfig(seed=a.seed))
    cfg = AdaptiveWorldModelConfig.for_robot("toroidal_dot")  # the same settings as train.py
    recorder = None
    if a.record:
        from recording import RecordingRobot

        robot = recorder = RecordingRobot(robot, metadata={"seed": a.seed})
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


if __name__ == "__main__":
    exit_on_user_error(main)
