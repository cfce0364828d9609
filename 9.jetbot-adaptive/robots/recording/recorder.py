"""RecordingRobot: wrap any robot and keep what it saw and did, on disk, as it happens.

A session is a folder ``saved/sessions/<robot_type>/<session name>/``:

    metadata.json   robot type, action space, start/end time, counts, why it ended (rewritten atomically)
    events.jsonl    one JSON line per event, appended and flushed as it happens:
                    {"type": "observation", "index": 3, "t": ..., "file": "frames/000003.png"}
                    {"type": "action", "index": 2, "t": ..., "action": {...}, "ok": true,
                     "observation": 3, "metadata": {...}}
    frames/         one lossless PNG per observation, each written to a temporary name and renamed

A frame is on disk before the line that names it, and each line is flushed before the next step, so a
crash loses at most the step in progress and never leaves a line pointing at a missing frame.

Disk cap: all sessions under the root together may use at most ``max_disk_gb``. When a step pushes the
total over, the oldest *other* sessions are deleted first; if the session being written is alone over
the cap, it is closed cleanly and ``RecordingDiskFullError`` is raised (the runner stops on it).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
from config import RECORDING_MAX_DISK_GB

from robots import RobotInterface

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "saved" / "sessions"


class RecordingDiskFullError(RuntimeError):
    """The disk cap (or the disk itself) is full even after deleting every older session."""


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON to a temporary file, then rename it over ``path`` (a reader never sees half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def _plain(value):
    """JSON fallback for what learners put in metadata: numpy scalars and arrays, tensors; else repr."""
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return value.tolist()
    return repr(value)


def folder_bytes(path: Path) -> int:
    """Total size of the files under ``path`` (0 if it does not exist)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def list_session_dirs(root: Path = DEFAULT_ROOT, robot_type: str | None = None) -> list[Path]:
    """Every session folder under ``root`` (one robot type or all), oldest first (names are timestamps)."""
    root = Path(root)
    types = [root / robot_type] if robot_type else sorted(p for p in root.glob("*") if p.is_dir())
    sessions = [s for t in types if t.is_dir() for s in t.iterdir() if (s / "metadata.json").exists()]
    return sorted(sessions, key=lambda s: s.name)


class RecordingRobot(RobotInterface):
    """A robot that records every observation and action of the robot it wraps.

    Args:
        robot: any RobotInterface.
        root: where sessions go (default ``saved/sessions`` in this chapter).
        max_disk_gb: cap on all sessions under ``root`` together.
        metadata: extra JSON-able facts to keep with the session (seed, selector, notes).
    """

    def __init__(
        self,
        robot: RobotInterface,
        root: str | Path = DEFAULT_ROOT,
        max_disk_gb: float = RECORDING_MAX_DISK_GB,
        metadata: dict | None = None,
    ):
        """Create the session folder and its metadata, and measure what older sessions already use."""
        if max_disk_gb <= 0:
            raise ValueError(f"max_disk_gb must be > 0, got {max_disk_gb}")
        self.robot = robot
        self.robot_type = robot.robot_type
        self.root = Path(root)
        self.max_bytes = int(max_disk_gb * 1e9)
        now = datetime.now(UTC)
        self.session_dir = self.root / self.robot_type / now.strftime("session_%Y%m%d_%H%M%S_%f")
        (self.session_dir / "frames").mkdir(parents=True, exist_ok=False)
        self.metadata = {
            "format_version": 1,
            "robot_type": self.robot_type,
            "action_space": robot.action_space,
            "started": now.isoformat(),
            "ended": None,
            "stop_reason": None,
            "num_observations": 0,
            "num_actions": 0,
            "extra": metadata or {},
        }
        write_json_atomic(self.session_dir / "metadata.json", self.metadata)
        self._events = open(self.session_dir / "events.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        self._bytes = folder_bytes(self.root)  # every session, this one included
        self._last_observation: int | None = None
        self._pending_metadata: dict = {}
        self.closed = False

    # ---- RobotInterface -------------------------------------------------------------------------
    @property
    def action_space(self) -> list[dict]:
        """The wrapped robot's actions."""
        return self.robot.action_space

    @property
    def finished(self) -> bool:
        """The wrapped robot's ``finished``."""
        return self.robot.finished

    @property
    def last_failure(self) -> str | None:
        """The wrapped robot's ``last_failure`` (why its last observation was None)."""
        return getattr(self.robot, "last_failure", None)

    def get_observation(self) -> np.ndarray | None:
        """Get a frame from the robot and record it (frame file first, then its event line)."""
        frame = self.robot.get_observation()
        if frame is None or self.closed:
            return frame
        index = self.metadata["num_observations"]
        name = f"frames/{index:06d}.png"
        path = self.session_dir / name
        tmp = path.with_name(f"tmp_{path.name}")
        ok, png = cv2.imencode(
            ".png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1]
        )
        if not ok:
            raise ValueError(f"could not encode an observation of shape {frame.shape} as PNG")
        self._write(lambda: (tmp.write_bytes(png.tobytes()), os.replace(tmp, path)), len(png))
        self.metadata["num_observations"] += 1
        self._last_observation = index
        self._append({"type": "observation", "index": index, "t": time.time(), "file": name})
        return frame

    def annotate(self, metadata: dict) -> None:
        """Attach ``metadata`` (e.g. the selector's) to the next recorded action."""
        self._pending_metadata = dict(metadata)

    def execute_action(self, action: dict) -> bool:
        """Execute on the robot (a malformed action raises there, before anything is recorded), then
        record the action with its timestamp, result and the observation it was chosen from."""
        t = time.time()
        ok = self.robot.execute_action(action)
        if not self.closed:
            record = {"type": "action", "index": self.metadata["num_actions"], "t": t, "action": action}
            record.update(ok=bool(ok), observation=self._last_observation, metadata=self._pending_metadata)
            self.metadata["num_actions"] += 1
            self._append(record)
        self._pending_metadata = {}
        return ok

    def cleanup(self) -> None:
        """Close the session (if still open; a caller that knows why the run ended calls ``close(reason)``
        first) and clean up the wrapped robot."""
        self.close("cleanup")
        self.robot.cleanup()

    # ---- recording ------------------------------------------------------------------------------
    def close(self, reason: str) -> None:
        """Finish the session: flush the event log and rewrite the metadata with the end time and reason."""
        if self.closed:
            return
        self.closed = True
        self._events.close()
        self.metadata.update(ended=datetime.now(UTC).isoformat(), stop_reason=reason)
        write_json_atomic(self.session_dir / "metadata.json", self.metadata)

    def _append(self, event: dict) -> None:
        """Append one JSON line and flush it to the OS (so a crash of this process cannot lose it)."""
        line = json.dumps(event, default=_plain) + "\n"
        self._write(lambda: (self._events.write(line), self._events.flush()), len(line))

    def _write(self, do, size: int) -> None:
        """Run a write, count its bytes, keep under the cap; a full disk ends the session cleanly."""
        try:
            do()
        except OSError as e:
            if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            self._stop(f"the disk is full ({e.strerror}) while writing {self.session_dir}")
        self._bytes += size
        if self._bytes > self.max_bytes:
            self._enforce_cap()

    def _enforce_cap(self) -> None:
        """Delete the oldest other sessions until under the cap; if that is not enough, stop recording."""
        for old in list_session_dirs(self.root):
            if self._bytes <= self.max_bytes:
                return
            if old.resolve() == self.session_dir.resolve():
                continue  # never the session being written
            freed = folder_bytes(old)
            shutil.rmtree(old, ignore_errors=True)
            self._bytes -= freed
            print(f"recording: disk cap {self.max_bytes / 1e9:.3g} GB reached, deleted oldest session {old}")
        if self._bytes > self.max_bytes:
            self._stop(
                f"recording disk cap of {self.max_bytes / 1e9:.3g} GB reached by the current session "
                f"alone ({self._bytes / 1e9:.3g} GB); it was closed and kept in {self.session_dir}"
            )

    def _stop(self, message: str) -> None:
        """Close the session with ``message`` as its reason and raise RecordingDiskFullError."""
        try:
            self.close("disk cap reached")
        except OSError:
            self.closed = True  # the disk is so full that even the metadata cannot be rewritten
        raise RecordingDiskFullError(message)
