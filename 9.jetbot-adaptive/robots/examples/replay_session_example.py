"""Replay every recorded session (any robot type) through the runner, as if the robot were there.

    uv run robots/examples/toroidal_dot_runner_example.py --record --no-display     # make a session first
    uv run robots/examples/replay_session_example.py --no-display                   # replay all of them
    uv run robots/examples/replay_session_example.py --robot-type jetbot --steps 20

Each session becomes a ``ReplayRobot`` driven by its own recorded actions, so the runner sees exactly
the frames and actions of the original run. ``--actions random`` drives it with random actions instead
(``--seed``): the frames still come from the recording, and the mismatches are counted.
"""

# ruff: noqa: E402 - imports follow the sys.path line below
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the chapter folder: runs from any cwd

import argparse
from dataclasses import dataclass

from robots.recording import (
    DEFAULT_ROOT,
    RecordingReader,
    RecordingRobot,
    ReplayRobot,
    create_recorded_action_selector,
)
from robots.runner import RobotRunner, create_random_action_selector
from robots.runner.cli import close_and_stop, print_stats


@dataclass
class ReplaySettings:
    """Command-line settings of the replay."""

    steps: int = 0  # 0: every recorded step
    no_display: bool = False
    record: bool = False
    seed: int = 0
    actions: str = "recorded"
    robot_type: str | None = None
    root: str = str(DEFAULT_ROOT)


def parse_args(argv=None) -> ReplaySettings:
    """Flags -> settings; bad values are a usage error (exit code 2)."""
    d = ReplaySettings()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=d.steps, help="at most this many steps per session (0: all)")
    p.add_argument("--no-display", action="store_true", help="no matplotlib window")
    p.add_argument("--record", action="store_true", help="record each replay as a new session")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of --actions random")
    p.add_argument(
        "--actions", choices=["recorded", "random"], default=d.actions, help="what drives the replay"
    )
    p.add_argument("--robot-type", default=d.robot_type, help="only this robot type (default: all)")
    p.add_argument("--root", default=d.root, help="where the sessions are")
    a = p.parse_args(argv)
    if a.steps < 0:
        p.error("--steps must be >= 0")
    return ReplaySettings(**vars(a))


def main(argv=None) -> int:
    """Replay each session in turn; print its statistics. Returns the exit code."""
    s = parse_args(argv)
    sessions = RecordingReader.list_sessions(Path(s.root), s.robot_type)
    if not sessions:
        print(
            f"error: no recorded sessions under {s.root}: run an example with --record first", file=sys.stderr
        )
        return 2
    for session in sessions:
        try:
            reader = RecordingReader(session)
        except ValueError as e:
            print(f"skipping {session}: {e}")
            continue
        robot = replay = ReplayRobot(reader)
        recorder = None
        if s.record:
            robot = recorder = RecordingRobot(replay, root=s.root, metadata={"replay_of": str(session)})
        if s.actions == "recorded":
            selector = create_recorded_action_selector(reader)
        else:
            selector = create_random_action_selector(reader.action_space, s.seed)
        steps = s.steps or len(reader) + 1
        print(
            f"\n{reader.robot_type}/{session.name}: {len(reader)} actions, {reader.num_observations} frames"
        )
        stats = RobotRunner(robot, selector, display=not s.no_display).run(steps)
        close_and_stop(robot, recorder, stats["stop_reason"])  # the session keeps why the replay ended
        print_stats(stats)
        print(f"{'mismatches':<18}{replay.mismatches} actions differed from the recording")
    return 0


if __name__ == "__main__":
    sys.exit(main())
