"""The adaptive world model on a JetBot over RPyC: the real robot, or the simulated one.

    uv run robots/sim_jetbot_server.py                                   # terminal 1: a simulated JetBot
    uv run learner/examples/jetbot_world_model_example.py --steps 50 --no-display  # terminal 2: learn

On a real JetBot run jetbot_server.py on the robot and pass --ip. A lost connection saves a checkpoint
and exits with one line (run the same command again to resume). At the end it prints the model's
prediction error, the reported error (the last frame plus the share of the model's predicted change
that has served best so far, per action; learner/trust.py) with the mean share, and the
copy-last-frame error over the same steps.
"""

# ruff: noqa: E402 - imports follow the sys.path line below
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the chapter folder: runs from any cwd

import argparse

from config import MAX_BAD_FRAMES, AdaptiveWorldModelConfig
from learner.cli import add_learner_flags, build_learner
from learner.utils import UserError, exit_on_user_error, set_threads
from robots import RobotConnectionError, interrupt_on_signals
from robots.runner.cli import close_and_stop


def parse_args(argv=None) -> argparse.Namespace:
    """Flags as in part 1's JetBot examples, plus the learner's."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ip", default="127.0.0.1", help="the JetBot (or simulated server) address")
    p.add_argument("--port", type=int, default=18861)
    p.add_argument("--camera-size", type=int, default=224, help="side of the frames the server sends")
    add_learner_flags(p, 50, "jetbot")
    a = p.parse_args(argv)
    if a.steps <= 0 or not 16 <= a.camera_size <= 1024:
        raise UserError(
            f"--steps must be positive and --camera-size in 16..1024, got {a.steps}, {a.camera_size}"
        )
    return a


def main(argv=None) -> None:
    """Connect, learn for --steps, report. However it ends (budget, Ctrl-C, a lost robot, an exception)
    the checkpoint is saved, the motors stop and a recording is closed with the true reason; a lost
    robot or a camera sending no usable frame then ends in one line and exit code 2."""
    a = parse_args(argv)
    threads = set_threads(a.threads, apply=False)  # first line of output; torch loads after the camera check
    interrupt_on_signals()  # kill and a closed terminal stop the run as Ctrl-C does
    from robots import JetBotInterface

    cfg = AdaptiveWorldModelConfig.for_robot("jetbot")  # learning rates, 4 updates per step: config.py
    try:  # frames are shrunk to the model's size on arrival: the recording keeps what the model sees
        robot = JetBotInterface(a.ip, a.port, camera_size=a.camera_size, frame_size=cfg.MODEL_IMG_SIZE)
    except RobotConnectionError as e:
        raise UserError(f"cannot reach the JetBot at {a.ip}:{a.port} ({e}); is the server running?") from e
    if not robot.wait_for_frame(MAX_BAD_FRAMES + 1):  # a dead camera: say so before building the model
        close_and_stop(robot, None, "no frames")
        raise UserError(
            f"no frames: {MAX_BAD_FRAMES + 1} frames in a row were unusable; "
            f"the last one was {robot.last_failure}"
        )
    import torch  # torch and the model code: only once the camera works
    from learner import summary

    torch.set_num_threads(threads)

    recorder, reason = None, "error"
    try:
        if a.record:
            from robots.recording import RecordingRobot

            robot = recorder = RecordingRobot(robot, metadata={"seed": a.seed})
        learner = build_learner(robot, a, cfg)  # one line if the JetBot is lost before the first step
        stats = learner.run(a.steps)
        reason = stats["stop_reason"]
    except KeyboardInterrupt:
        reason = "interrupted"
        raise UserError("interrupted before the first step") from None
    except BaseException as e:
        reason = f"error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        raise
    finally:
        close_and_stop(robot, recorder, reason)
    print(summary(learner, stats))
    if reason.startswith("connection_lost"):
        raise UserError(
            f"connection to the JetBot lost at step {learner.step_count}; checkpoint saved to "
            f"{learner.checkpoint_dir} (run again to resume)"
        )
    if reason.startswith("no frames"):
        raise UserError(f"{reason}; checkpoint saved to {learner.checkpoint_dir}")


if __name__ == "__main__":
    exit_on_user_error(main)
