"""The adaptive world model on the toroidal dot, with a window (or view.png) showing what it thinks.

    uv run learner/examples/toroidal_dot_world_model_example.py --steps 500
    uv run learner/examples/toroidal_dot_world_model_example.py --steps 500 --no-display --record

It resumes from checkpoints/toroidal_dot/ when a checkpoint is there (the one train.py writes), so you
can watch a trained learner; --steps counts the total, as in train.py.
"""

# ruff: noqa: E402 - imports follow the sys.path line below
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the chapter folder: runs from any cwd

import argparse

from config import AdaptiveWorldModelConfig
from learner.cli import add_learner_flags, build_learner
from learner.logs import summary
from learner.utils import UserError, exit_on_user_error, set_threads
from robots import ToroidalDotConfig, ToroidalDotRobot
from robots.runner.cli import close_and_stop


def parse_args(argv=None) -> argparse.Namespace:
    """The flags shared with part 1's examples, plus the learner's."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_learner_flags(p, 300, "toroidal_dot")
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
        from robots.recording import RecordingRobot

        robot = recorder = RecordingRobot(robot, metadata={"seed": a.seed})
    learner = build_learner(robot, a, cfg)
    stats = learner.run(a.steps)  # saves a checkpoint however it ends (Ctrl-C included)
    close_and_stop(robot, recorder, stats["stop_reason"])
    print(summary(learner, stats))


if __name__ == "__main__":
    exit_on_user_error(main)
