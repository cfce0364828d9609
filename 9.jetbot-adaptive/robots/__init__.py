"""Part 1, the robot path: the RobotInterface contract and its implementations (toroidal dot, JetBot
over RPyC), the on-robot and simulated servers, and in subpackages what runs a robot without learning:

runner/      the observe-choose-act loop and the action selectors
recording/   sessions on disk with a disk cap, and replay (``ReplayRobot``)
examples/    runnable scripts: the dot and the JetBot through the runner, replay, the speed table
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
