"""Reading recorded sessions back: RecordingReader, ReplayRobot and the recorded-action selector.

Replay turns a recording into a robot again, so everything that runs on a live robot (the runner, a
learner) runs on yesterday's session, bit for bit, without the robot.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from robots import RobotInterface

from .recorder import DEFAULT_ROOT, list_session_dirs


class RecordingReader:
    """One recorded session: its metadata, its observations (frames) and its actions.

    A session cut short by a crash is read up to its last complete line. ``steps`` pairs each action
    with the observation it was chosen from.

    Args:
        session_dir: a folder written by ``RecordingRobot`` (holds metadata.json and events.jsonl).
    """

    def __init__(self, session_dir: str | Path):
        """Read the metadata and the event log (frames are loaded lazily)."""
        self.session_dir = Path(session_dir)
        meta = self.session_dir / "metadata.json"
        if not meta.exists():
            raise FileNotFoundError(f"{self.session_dir} is not a recorded session (no metadata.json)")
        try:
            self.metadata = json.loads(meta.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{meta} is not valid JSON ({e.msg})") from None
        self.observation_files: list[str] = []
        self.observation_times: list[float] = []
        self.actions: list[dict] = []  # {"index", "t", "action", "ok", "observation", "metadata"}
        events = self.session_dir / "events.jsonl"
        lines = events.read_text(encoding="utf-8").splitlines() if events.exists() else []
        for line in lines:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                break  # a crash mid-line: everything before it is intact
            if event.get("type") == "observation":
                self.observation_files.append(event["file"])
                self.observation_times.append(event["t"])
            elif event.get("type") == "action":
                self.actions.append(event)

    @classmethod
    def list_sessions(cls, root: str | Path = DEFAULT_ROOT, robot_type: str | None = None) -> list[Path]:
        """Every session folder under ``root`` (for one robot type, or all), oldest first."""
        return list_session_dirs(Path(root), robot_type)

    @property
    def robot_type(self) -> str:
        """The recorded robot's type (``toroidal_dot``, ``jetbot``, ...)."""
        return self.metadata["robot_type"]

    @property
    def action_space(self) -> list[dict]:
        """The recorded robot's action space."""
        return self.metadata["action_space"]

    @property
    def num_observations(self) -> int:
        """How many frames were recorded."""
        return len(self.observation_files)

    def __len__(self) -> int:
        """The number of recorded actions."""
        return len(self.actions)

    def observation(self, index: int) -> np.ndarray:
        """Frame ``index`` as (H, W, 3) uint8 RGB."""
        path = self.session_dir / self.observation_files[index]
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"recorded frame {path} is missing or unreadable")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def steps(self):
        """Yield ``(observation, action_record)`` for every action whose observation was recorded."""
        for record in self.actions:
            if record.get("observation") is not None:
                yield self.observation(record["observation"]), record


class ReplayRobot(RobotInterface):
    """A recorded session played back as a robot.

    ``get_observation`` returns the frame the next recorded action was chosen from; ``execute_action``
    moves on to the next one (whatever action is passed: the past cannot be changed, but
    ``mismatches`` counts the actions that differ from the recorded ones). After the last action the
    robot shows the final recorded frame once more, then reports ``finished``.
    """

    def __init__(self, reader: RecordingReader):
        """Index the frames to show: the one before each action, then the final frame."""
        self.reader = reader
        self.robot_type = reader.robot_type
        frames = [a["observation"] for a in reader.actions if a.get("observation") is not None]
        last = reader.num_observations - 1
        if last >= 0 and (not frames or last > frames[-1]):
            frames.append(last)  # the frame seen after the last action
        self._frames = frames
        self._recorded = [a["action"] for a in reader.actions if a.get("observation") is not None]
        self.position = 0
        self.mismatches = 0

    @property
    def action_space(self) -> list[dict]:
        """The recorded robot's action space."""
        return self.reader.action_space

    @property
    def finished(self) -> bool:
        """True once every recorded frame has been shown."""
        return self.position >= len(self._frames)

    def get_observation(self) -> np.ndarray | None:
        """The current recorded frame, or None at the end of the session."""
        return None if self.finished else self.reader.observation(self._frames[self.position])

    def execute_action(self, action: dict) -> bool:
        """Advance one step; count a mismatch when ``action`` differs from the recorded one."""
        if not isinstance(action, dict):
            raise ValueError(f"expected an action dict, got {action!r}")
        if self.position < len(self._recorded) and action != self._recorded[self.position]:
            self.mismatches += 1
        self.position += 1
        return True

    def cleanup(self) -> None:
        """Nothing to release."""


def create_recorded_action_selector(
    reader: RecordingReader, action_filter: Callable[[dict], bool] | None = None
):
    """A selector that returns the session's recorded actions in order, then ``(None, ...)``.

    Args:
        reader: the session to take actions from.
        action_filter: optional ``action -> bool``; actions for which it is False are skipped (e.g.
            ``lambda a: a["motor_right"] > 0`` keeps only moves).
    """
    actions = [r for r in reader.actions if action_filter is None or action_filter(r["action"])]
    position = 0

    def select(observation: np.ndarray) -> tuple[dict | None, dict]:
        """Return the next recorded action and where it came from."""
        nonlocal position
        if position >= len(actions):
            return None, {"selector": "recorded", "finished": True}
        record = actions[position]
        position += 1
        return dict(record["action"]), {"selector": "recorded", "recorded_index": record["index"]}

    return select
