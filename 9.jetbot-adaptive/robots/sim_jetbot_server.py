"""A simulated JetBot behind the real JetBot server's protocol: the whole robot path on one laptop.

    uv run robots/sim_jetbot_server.py                      # 127.0.0.1:18861, a 3 m room, 224x224 frames
    uv run robots/jetbot_remote_client.py --ip 127.0.0.1    # in another terminal: watch it
    uv run robots/examples/jetbot_runner_example.py --ip 127.0.0.1   # or drive it

It serves ``JetBotService`` from ``jetbot_server.py`` (the very class that runs on the robot, with its
two exposed methods, clamping and 1 s watchdog) over a ``SimulatedJetBot`` (robots/sim_room.py): a
two-wheeled robot in a room with coloured walls, whose camera view turns and grows as its motors
run. ``--corrupt-every N`` replaces every N-th frame with bytes that are not a JPEG, to rehearse the
decode-failure path; ``--motor-log FILE`` appends every motor command the robot receives as a JSON line
(``{"t": unix time, "left": l, "right": r}``), to check that the motors stop on every way out.
"""

# ruff: noqa: E402 - imports follow the sys.path line below
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the chapter folder: runs from any cwd

import argparse
import base64
import json
import time
from dataclasses import dataclass

from jetbot_server import DEFAULT_PORT, JetBotService, encode_frame, serve

from robots.sim_room import SimulatedJetBot


@dataclass
class SimServerSettings:
    """Command-line settings of the simulated server."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    size: int = 224
    seed: int = 0
    noise: float = 0.0
    corrupt_every: int = 0
    watchdog_s: float = 1.0
    motor_log: str | None = None


class CorruptingCamera:
    """Wrap a robot, spoil every ``every``-th frame (a fault drill) and log motor commands to a file."""

    def __init__(self, robot: SimulatedJetBot, every: int, motor_log: str | None = None):
        """Count frames from 1; ``motor_log``: a file to append each motor command to (None: no log)."""
        self.robot, self.every, self.count, self.motor_log = robot, every, 0, motor_log

    def read_frame(self):
        """The robot's frame, or on every ``every``-th call a marker the service sends as-is."""
        self.count += 1
        return None if self.every and self.count % self.every == 0 else self.robot.read_frame()

    def set_motors(self, left: float, right: float) -> None:
        """Pass through, and log the command when asked to."""
        self.robot.set_motors(left, right)
        if self.motor_log:
            with open(self.motor_log, "a") as f:
                f.write(json.dumps({"t": time.time(), "left": left, "right": right}) + "\n")

    def close(self) -> None:
        """Pass through."""
        self.robot.close()


class SimJetBotService(JetBotService):
    """JetBotService whose frame can be a deliberately broken payload (see ``--corrupt-every``)."""

    def exposed_get_camera_frame(self):
        """A base64 JPEG, or base64 of bytes that are not a JPEG when the camera wrapper says so."""
        frame = self._hardware.read_frame()
        if frame is None:
            return base64.b64encode(b"\xff\xd8 this is not a JPEG").decode("ascii")
        return encode_frame(frame, self._quality)


def parse_args(argv=None) -> SimServerSettings:
    """Flags -> settings (defaults from the dataclass); bad values are a usage error (exit code 2)."""
    d = SimServerSettings()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default=d.host, help="address to listen on (127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=d.port, help="TCP port (0 picks a free one, printed at start)")
    p.add_argument("--size", type=int, default=d.size, help="frame width and height in pixels")
    p.add_argument("--seed", type=int, default=d.seed, help="the robot's start pose")
    p.add_argument("--noise", type=float, default=d.noise, help="camera noise std (0-255 scale)")
    p.add_argument(
        "--corrupt-every", type=int, default=d.corrupt_every, help="spoil every N-th frame (0: never)"
    )
    p.add_argument("--watchdog-s", type=float, default=d.watchdog_s, help="stop motors after this silence")
    p.add_argument("--motor-log", default=d.motor_log, help="append each motor command to this JSONL file")
    a = p.parse_args(argv)
    if not 16 <= a.size <= 1024 or a.noise < 0 or a.corrupt_every < 0 or a.watchdog_s <= 0:
        p.error("need 16 <= --size <= 1024, --noise >= 0, --corrupt-every >= 0, --watchdog-s > 0")
    return SimServerSettings(**vars(a))


def main(argv=None) -> None:
    """Build the simulated robot and serve it until Ctrl-C, SIGTERM or SIGHUP (motors stop on each)."""
    s = parse_args(argv)
    robot = SimulatedJetBot(size=s.size, seed=s.seed, noise_std=s.noise)
    camera = CorruptingCamera(robot, s.corrupt_every, s.motor_log)
    service = SimJetBotService(camera, watchdog_s=s.watchdog_s)
    serve(service, s.host, s.port, "simulated JetBot server")


if __name__ == "__main__":
    sys.exit(main())
