"""What the runnable examples share: their flags, the one-line errors, and the run-and-report loop."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass

from config import LOST_CONNECTION_EXIT_CODE, RECORDING_MAX_DISK_GB

from robots import RobotConnectionError, RobotInterface, interrupt_on_signals
from robots.recording import DEFAULT_ROOT, RecordingRobot

from .runner import RobotRunner
from .selectors import SEQUENCES, create_random_action_selector, create_sequence_action_selector


@dataclass
class ExampleSettings:
    """Flags every example accepts (the JetBot ones also use ``ip`` and ``port``)."""

    steps: int = 100
    no_display: bool = False
    record: bool = False
    seed: int = 0
    selector: str = "random"
    interactive: bool = False
    max_disk_gb: float = RECORDING_MAX_DISK_GB
    ip: str = "127.0.0.1"
    port: int = 18861
    camera_size: int = 224


def parse_example_args(description: str, jetbot: bool, argv=None, **defaults) -> ExampleSettings:
    """Parse the shared flags; bad values are a usage error (one line, exit code 2)."""
    d = ExampleSettings(**defaults)
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--steps", type=int, default=d.steps, help="how many actions to take")
    p.add_argument("--no-display", action="store_true", help="no matplotlib window (headless runs)")
    p.add_argument("--record", action="store_true", help=f"record the session under {DEFAULT_ROOT}")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the world and the random selector")
    choices = ["random", *SEQUENCES]
    p.add_argument("--selector", choices=choices, default=d.selector, help="where the actions come from")
    p.add_argument("--interactive", action="store_true", help="confirm or override each action on stdin")
    p.add_argument("--max-disk-gb", type=float, default=d.max_disk_gb, help="recording cap, all sessions")
    if jetbot:
        p.add_argument("--ip", default=d.ip, help="the JetBot's (or robots/sim_jetbot_server.py's) address")
        p.add_argument("--port", type=int, default=d.port, help="the server's port")
        p.add_argument(
            "--camera-size", type=int, default=d.camera_size, help="side of the frames the server sends"
        )
    a = p.parse_args(argv)
    if a.steps < 0 or a.max_disk_gb <= 0:
        p.error("--steps must be >= 0 and --max-disk-gb > 0")
    if jetbot and (not 0 < a.port < 65536 or not 16 <= a.camera_size <= 1024):
        p.error(f"--port must be in 1..65535 and --camera-size in 16..1024, got {a.port}, {a.camera_size}")
    return ExampleSettings(**vars(a))


def fail(message: str, code: int) -> None:
    """Print one line on stderr and exit with ``code`` (2: something the user can fix)."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def run_example(make_robot: Callable[[], RobotInterface], s: ExampleSettings, metadata: dict) -> dict:
    """Build the robot, optionally record it, run the selector for ``s.steps``, print the statistics.

    Whatever ends the run (the step budget, Ctrl-C, a lost robot, an exception), the motors are stopped
    and the session is closed with the true reason in its metadata.json before this returns or exits.
    Exit codes: 0 after a completed run or a clean stop (selector done, disk cap, Ctrl-C); 2 for a lost
    robot or a camera that sends no usable frame (the recording is saved first) and for errors the user
    can fix (server unreachable at start, a malformed action).
    """
    interrupt_on_signals()
    try:
        robot = make_robot()
    except RobotConnectionError as e:
        fail(f"{e} (is the server running? see the README)", LOST_CONNECTION_EXIT_CODE)
    except KeyboardInterrupt:
        fail("interrupted while connecting", LOST_CONNECTION_EXIT_CODE)
    recorder = None
    try:
        if s.record:
            robot = recorder = RecordingRobot(robot, max_disk_gb=s.max_disk_gb, metadata=metadata)
        if s.selector == "random":
            selector = create_random_action_selector(robot.action_space, s.seed)
        else:
            selector = create_sequence_action_selector(robot.action_space, SEQUENCES[s.selector])
        runner = RobotRunner(robot, selector, display=not s.no_display, interactive=s.interactive)
        stats = runner.run(s.steps)
    except BaseException as e:  # a malformed action, a bug, a second Ctrl-C: stop, save, then report
        close_and_stop(robot, recorder, f"error: {type(e).__name__}: {e}")
        if isinstance(e, ValueError):  # a malformed action: nothing was executed or recorded for it
            fail(str(e), 2)
        if isinstance(e, KeyboardInterrupt):
            fail("interrupted", LOST_CONNECTION_EXIT_CODE)
        raise
    close_and_stop(robot, recorder, stats["stop_reason"])
    print_stats(stats)
    if recorder is not None:
        print(f"session saved in {recorder.session_dir} ({recorder.metadata['num_actions']} actions)")
    if stats["stop_reason"] in ("connection lost", "no frames"):
        fail(f"{stats['stop_reason']}: {stats['error']}", LOST_CONNECTION_EXIT_CODE)
    return stats


def close_and_stop(robot: RobotInterface, recorder: RecordingRobot | None, reason: str) -> None:
    """Close the recording with ``reason`` (first: it must survive a robot that fails to stop), then stop
    the robot's motors and close its connection. Never raises for a robot that is already gone."""
    if recorder is not None:
        recorder.close(reason)
    try:
        robot.cleanup()
    except (RobotConnectionError, OSError, EOFError):
        pass  # the server is gone: its watchdog stops the motors within a second


def print_stats(stats: dict) -> None:
    """The run's statistics as a few aligned lines."""
    print(f"{'steps':<18}{stats['steps']}")
    print(f"{'seconds':<18}{stats['seconds']:.2f}")
    print(f"{'steps per second':<18}{stats['steps_per_second']:.1f}")
    ms = stats["mean_ms"]
    stages = f"observe {ms['observe_ms']:.2f}, select {ms['select_ms']:.2f}, act {ms['act_ms']:.2f}"
    print(f"{'ms per step':<18}{stages}")
    for action, count in sorted(stats["action_counts"].items()):
        print(f"{'action':<18}{action}: {count}")
    print(
        f"{'stopped because':<18}{stats['stop_reason']}" + (f" ({stats['error']})" if stats["error"] else "")
    )
