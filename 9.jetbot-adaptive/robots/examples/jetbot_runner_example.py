"""Drive a JetBot (real, or sim_jetbot_server.py) with an action selector, optionally recording it.

    uv run robots/sim_jetbot_server.py &                                 # or jetbot_server.py on the robot
    uv run robots/examples/jetbot_runner_example.py --ip 127.0.0.1 --steps 50 --record
    uv run robots/examples/jetbot_runner_example.py --ip 192.168.1.42 --selector alternate --no-display

A lost connection (or a camera that sends no usable frame) ends the run with one line and exit code 2,
after the recording is saved; Ctrl-C, ``kill`` and a closed terminal stop the motors and close the
recording with the true reason.
"""

# ruff: noqa: E402 - imports follow the sys.path line below
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the chapter folder: runs from any cwd

from robots import JetBotInterface
from robots.runner.cli import parse_example_args, run_example


def main(argv=None) -> None:
    """Parse the flags, connect, run."""
    s = parse_example_args(__doc__.splitlines()[0], jetbot=True, argv=argv, steps=50)
    meta = {"seed": s.seed, "selector": s.selector, "server": f"{s.ip}:{s.port}"}
    run_example(lambda: JetBotInterface(s.ip, s.port, camera_size=s.camera_size), s, meta)


if __name__ == "__main__":
    main()
