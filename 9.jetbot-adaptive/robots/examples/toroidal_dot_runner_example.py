"""Run the toroidal dot with an action selector (no learning), optionally recording the session.

uv run robots/examples/toroidal_dot_runner_example.py                        # 100 random actions, live view
uv run robots/examples/toroidal_dot_runner_example.py --selector alternate --steps 50 --no-display --record
uv run robots/examples/toroidal_dot_runner_example.py --interactive  # Enter accepts, 0/1 overrides
"""

# ruff: noqa: E402 - imports follow the sys.path line below
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the chapter folder: runs from any cwd

from robots import ToroidalDotConfig, ToroidalDotRobot
from robots.runner.cli import parse_example_args, run_example


def main(argv=None) -> None:
    """Parse the flags, build the dot world from the seed, run it."""
    s = parse_example_args(__doc__.splitlines()[0], jetbot=False, argv=argv)
    run_example(
        lambda: ToroidalDotRobot(ToroidalDotConfig(seed=s.seed)), s, {"seed": s.seed, "selector": s.selector}
    )


if __name__ == "__main__":
    main()
