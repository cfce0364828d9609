"""Recording sessions to disk (with a disk cap) and reading them back as data or as a replayed robot."""

from .reader import RecordingReader, ReplayRobot, create_recorded_action_selector
from .recorder import (
    DEFAULT_ROOT,
    RecordingDiskFullError,
    RecordingRobot,
    list_session_dirs,
)

__all__ = [
    "DEFAULT_ROOT",
    "RecordingDiskFullError",
    "RecordingReader",
    "RecordingRobot",
    "ReplayRobot",
    "create_recorded_action_selector",
    "list_session_dirs",
]
