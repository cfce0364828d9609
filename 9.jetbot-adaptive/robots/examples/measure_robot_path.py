"""Measure the robot path's numbers: camera frames/s over RPyC, runner steps/s, recording cost per step.

    uv run robots/examples/measure_robot_path.py   # ~30 s; prints a table and writes outputs/robot_path.json

1. ``sim_jetbot_server.py`` -> ``RemoteJetBot`` frames per second on loopback (224x224 JPEG frames,
   decoded to RGB), against the 100 frames/s target and the ~30 frames/s a real JetBot camera gives.
2. Toroidal-dot steps per second through ``RobotRunner`` (random actions, no display).
3. Recording overhead per step (``RecordingRobot``, lossless PNG) for dot frames and for 224x224 camera
   frames of the simulated room, and the disk each step takes.
"""

# ruff: noqa: E402 - imports follow the sys.path line below
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the chapter folder: runs from any cwd

import argparse
import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass

import numpy as np
from robots import RemoteJetBot, RobotInterface, ToroidalDotConfig, ToroidalDotRobot
from robots.recording import RecordingRobot
from robots.runner import RobotRunner, create_random_action_selector
from robots.sim_room import SimulatedJetBot

HERE = Path(__file__).resolve().parents[2]  # the chapter folder


@dataclass
class MeasureSettings:
    """Command-line settings."""

    seconds: float = 10.0  # how long to pull camera frames
    steps: int = 3000  # runner steps per timing
    seed: int = 0


class RoomCamera(RobotInterface):
    """The simulated room's camera as a local robot (no network): isolates the cost of recording it."""

    robot_type = "room_camera"

    def __init__(self, seed: int):
        """A fake clock advanced 0.2 s per action, so every action changes the view."""
        self.now = [0.0]
        self.bot = SimulatedJetBot(seed=seed, clock=lambda: self.now[0])

    @property
    def action_space(self) -> list[dict]:
        """Stay or turn, like the JetBot."""
        return [{"motor_right": 0.0}, {"motor_right": 0.12}]

    def get_observation(self) -> np.ndarray:
        """The room as the camera sees it, RGB."""
        return self.bot.read_frame()[..., ::-1]

    def execute_action(self, action: dict) -> bool:
        """Run the right motor for 0.2 s of simulated time."""
        self.bot.set_motors(0.0, action["motor_right"])
        self.now[0] += 0.2
        self.bot.set_motors(0.0, 0.0)
        return True

    def cleanup(self) -> None:
        """Nothing to release."""


def camera_fps(seconds: float) -> dict:
    """Start the sim server, pull decoded frames for ``seconds``, return frames/s (and raw calls/s)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(HERE / "robots" / "sim_jetbot_server.py"), "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    try:
        port = int(proc.stdout.readline().strip().rsplit(":", 1)[1])
        bot = RemoteJetBot("127.0.0.1", port)
        bot.set_motors(0.05, 0.1)  # moving: every frame is a new render, not a repeat
        frames, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            frames += bot.get_frame() is not None
            if frames % 50 == 0:
                bot.set_motors(0.05, 0.1)  # keep the watchdog fed
        decoded = frames / (time.perf_counter() - start)
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 2:
            bot.get_camera_frame()
            calls += 1
        raw = calls / (time.perf_counter() - start)
        bot.stop()
        bot.close()
    finally:
        proc.kill()
        proc.wait()
    return {"camera_fps_decoded": decoded, "camera_fps_raw": raw}


def runner_rate(robot: RobotInterface, steps: int, seed: int) -> float:
    """Steps per second of ``robot`` under RobotRunner with random actions."""
    stats = RobotRunner(robot, create_random_action_selector(robot.action_space, seed)).run(
        steps, progress=False
    )
    robot.cleanup()
    return stats["steps_per_second"]


def main(argv=None) -> None:
    """Measure everything, print the table, write outputs/robot_path.json."""
    d = MeasureSettings()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=d.seconds, help="how long to pull camera frames")
    p.add_argument("--steps", type=int, default=d.steps, help="runner steps per timing")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of worlds and selectors")
    a = p.parse_args(argv)
    if a.seconds <= 0 or a.steps <= 0:
        p.error("--seconds and --steps must be > 0")
    s = MeasureSettings(**vars(a))
    m = camera_fps(s.seconds)
    dot = lambda: ToroidalDotRobot(ToroidalDotConfig(seed=s.seed))  # noqa: E731
    m["dot_steps_per_s"] = runner_rate(dot(), s.steps, s.seed)
    with tempfile.TemporaryDirectory() as root:
        rec = RecordingRobot(dot(), root=root)
        m["dot_steps_per_s_recording"] = runner_rate(rec, s.steps, s.seed)
        m["dot_bytes_per_step"] = (
            sum(f.stat().st_size for f in Path(root).rglob("*") if f.is_file()) / s.steps
        )
    m["dot_recording_ms_per_step"] = 1000 / m["dot_steps_per_s_recording"] - 1000 / m["dot_steps_per_s"]
    room_steps = max(s.steps // 10, 50)
    m["room_steps_per_s"] = runner_rate(RoomCamera(s.seed), room_steps, s.seed)
    with tempfile.TemporaryDirectory() as root:
        m["room_steps_per_s_recording"] = runner_rate(
            RecordingRobot(RoomCamera(s.seed), root=root), room_steps, s.seed
        )
        m["room_bytes_per_step"] = (
            sum(f.stat().st_size for f in Path(root).rglob("*") if f.is_file()) / room_steps
        )
    m["room_recording_ms_per_step"] = 1000 / m["room_steps_per_s_recording"] - 1000 / m["room_steps_per_s"]
    targets = {"camera_fps_decoded": 100.0}
    print(f"{'measure':<30}{'value':>12}{'target':>10}")
    for key, value in m.items():
        target = f">= {targets[key]:g}" if key in targets else ""
        print(f"{key:<30}{value:>12.2f}{target:>10}")
    out = HERE / "outputs"
    out.mkdir(exist_ok=True)
    report = {"measures": m, "targets": targets, "load_average": os.getloadavg(), "cpus": os.cpu_count()}
    (out / "robot_path.json").write_text(json.dumps(report, indent=2))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; wrote {out / 'robot_path.json'}")


if __name__ == "__main__":
    main()
