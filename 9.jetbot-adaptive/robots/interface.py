"""The one contract every robot in this chapter keeps: see, act, list your actions, clean up.

Everything above this file (the runner, the recorder, the adaptive world model) talks to a robot only
through these four members, so the same learner drives a simulated dot, a replayed session or a real
JetBot over the network without knowing which one it has.
"""

from __future__ import annotations

import signal
from abc import ABC, abstractmethod

import numpy as np


class RobotConnectionError(RuntimeError):
    """The robot stopped answering (network lost, server gone); callers catch this type to save and exit."""


def _raise_interrupt(signum, frame) -> None:
    """Signal handler: turn SIGTERM / SIGHUP into the KeyboardInterrupt that Ctrl-C raises."""
    raise KeyboardInterrupt


def interrupt_on_signals() -> None:
    """Make ``kill`` (SIGTERM) and a closed terminal (SIGHUP) stop a run the way Ctrl-C does: through the
    same ``except KeyboardInterrupt`` / ``finally`` blocks that stop the motors and close the session.

    Ctrl-C (SIGINT) is set back to Python's own handler too: a process started in the background by a
    non-interactive shell (``cmd &`` in a script, some CI runners) inherits SIGINT *ignored*, and Python
    then never raises KeyboardInterrupt, so Ctrl-C or ``kill -INT`` would leave the wheels turning."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)


class RobotInterface(ABC):
    """What a robot must offer the learning loop.

    Observations are RGB images, uint8, shape (H, W, 3). Actions are plain dicts (for example
    ``{"action": 1}`` for the toroidal dot, ``{"motor_left": 0.0, "motor_right": 0.12, "duration": 0.2}``
    for the JetBot), so they are easy to log as JSON and to type by hand.

    Besides the four abstract members, a robot may override three plain ones: ``robot_type`` (a short
    name; recordings are stored under ``saved/sessions/<robot_type>/``), ``finished`` (True when it
    has nothing more to show, as a replayed session at its end) and ``last_failure`` (why the last
    observation was None, e.g. what a camera server sent instead of a frame).
    """

    robot_type: str = "robot"
    last_failure: str | None = None

    @property
    def finished(self) -> bool:
        """True when the robot will never produce another observation (a live robot never is)."""
        return False

    @abstractmethod
    def get_observation(self) -> np.ndarray | None:
        """The current camera frame: (H, W, 3) uint8 RGB, or None when no frame is available yet."""

    @abstractmethod
    def execute_action(self, action: dict) -> bool:
        """Carry out one action (one entry of ``action_space``); return True when it was executed."""

    @property
    @abstractmethod
    def action_space(self) -> list[dict]:
        """Every action this robot can take, as a list of action dicts."""

    @abstractmethod
    def cleanup(self) -> None:
        """Stop motors, close connections and files. Safe to call more than once."""
