"""Robots: the RobotInterface contract and its implementations (toroidal dot, JetBot over RPyC).

A recorded session replayed as a robot (``ReplayRobot``) lives in the ``recording`` package.
"""

from .interface import RobotConnectionError, RobotInterface, interrupt_on_signals
from .jetbot_client import DEFAULT_PORT, JetBotInterface, RemoteJetBot, decode_frame
from .toroidal_dot import ToroidalDotConfig, ToroidalDotEnvironment, ToroidalDotRobot

__all__ = [
    "DEFAULT_PORT",
    "JetBotInterface",
    "RemoteJetBot",
    "RobotConnectionError",
    "RobotInterface",
    "ToroidalDotConfig",
    "ToroidalDotEnvironment",
    "ToroidalDotRobot",
    "decode_frame",
    "interrupt_on_signals",
]
