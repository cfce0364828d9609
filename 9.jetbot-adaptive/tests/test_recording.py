"""Recording, reading and replaying sessions; the disk cap; what a crash leaves behind."""

from __future__ import annotations

import json

import numpy as np
import pytest
from robots import ToroidalDotConfig, ToroidalDotRobot
from robots.recording import (
    RecordingReader,
    RecordingRobot,
    ReplayRobot,
    create_recorded_action_selector,
    list_session_dirs,
)
from robots.runner import (
    SEQUENCE_DOUBLE_MOVE,
    RobotRunner,
    create_random_action_selector,
    create_sequence_action_selector,
)


def record_dot_session(root, steps: int = 30, seed: int = 0, max_disk_gb: float = 1.0):
    """Run the dot with a random selector under a RecordingRobot: (session dir, frames, actions, stats)."""
    robot = RecordingRobot(ToroidalDotRobot(ToroidalDotConfig(seed=seed)), root=root, max_disk_gb=max_disk_gb)
    seen, done = [], []
    runner = RobotRunner(
        robot,
        create_random_action_selector(robot.action_space, seed),
        on_step=lambda step, obs, action, meta: (seen.append(obs.copy()), done.append(action)),
    )
    stats = runner.run(steps, progress=False)
    robot.cleanup()
    return robot.session_dir, seen, done, stats


def test_record_read_replay_gives_the_same_observations_and_actions(tmp_path):
    session, seen, done, stats = record_dot_session(tmp_path, steps=30)
    assert stats["steps"] == 30 and session.parent.name == "toroidal_dot"
    reader = RecordingReader(session)
    assert reader.robot_type == "toroidal_dot" and reader.action_space == [{"action": 0}, {"action": 1}]
    assert len(reader) == 30 and reader.metadata["stop_reason"] == "cleanup"
    times = [a["t"] for a in reader.actions]
    assert times == sorted(times) and all(a["metadata"]["selector"] == "random" for a in reader.actions)
    for (obs, record), frame, action in zip(reader.steps(), seen, done, strict=True):
        assert np.array_equal(obs, frame) and record["action"] == action  # lossless frames

    replayed, replayed_actions = [], []
    replay = ReplayRobot(reader)
    stats = RobotRunner(
        replay,
        create_recorded_action_selector(reader),
        on_step=lambda step, obs, action, meta: (replayed.append(obs), replayed_actions.append(action)),
    ).run(1000, progress=False)
    assert stats["steps"] == 30 and stats["stop_reason"] == "robot finished"
    assert replayed_actions == done and replay.mismatches == 0
    assert all(np.array_equal(a, b) for a, b in zip(replayed, seen, strict=True))


def test_recorded_selector_filter_and_replay_mismatches(tmp_path):
    session, _, done, _ = record_dot_session(tmp_path, steps=20, seed=1)
    reader = RecordingReader(session)
    moves = create_recorded_action_selector(reader, action_filter=lambda a: a["action"] == 1)
    picked = []
    while (action := moves(None)[0]) is not None:
        picked.append(action)
    assert picked == [a for a in done if a["action"] == 1] and len(picked) < len(done)
    replay = ReplayRobot(reader)
    RobotRunner(replay, lambda obs: ({"action": 1}, {})).run(100, progress=False)
    assert replay.mismatches == sum(a["action"] == 0 for a in done) > 0  # the past cannot be changed


def test_disk_cap_deletes_the_oldest_session_but_never_the_current_one(tmp_path):
    first, *_ = record_dot_session(tmp_path, steps=10, seed=1)
    second, *_ = record_dot_session(tmp_path, steps=10, seed=2)
    one_session = sum(f.stat().st_size for f in first.rglob("*") if f.is_file())
    # Room for about two and a half sessions: the third must push the oldest out, and only it.
    third, _, _, stats = record_dot_session(tmp_path, steps=10, seed=3, max_disk_gb=2.5 * one_session / 1e9)
    assert stats["stop_reason"] == "completed"
    assert list_session_dirs(tmp_path) == [second, third] and not first.exists()
    assert len(RecordingReader(third)) == 10


def test_disk_cap_reached_by_the_current_session_stops_cleanly(tmp_path):
    older, *_ = record_dot_session(tmp_path, steps=5, seed=1)
    session, seen, _, stats = record_dot_session(tmp_path, steps=200, seed=2, max_disk_gb=4e-5)  # 40 kB
    assert stats["stop_reason"] == "disk cap reached" and "disk cap" in stats["error"]
    assert 0 < stats["steps"] < 200 and not older.exists() and session.exists()
    reader = RecordingReader(session)  # closed cleanly and readable
    assert reader.metadata["stop_reason"] == "disk cap reached"
    assert len(reader) >= stats["steps"] - 1
    for (obs, _), frame in zip(reader.steps(), seen, strict=False):
        assert np.array_equal(obs, frame)


def test_a_crash_loses_at_most_the_last_step(tmp_path):
    robot = RecordingRobot(ToroidalDotRobot(ToroidalDotConfig(seed=0)), root=tmp_path)
    for _ in range(5):
        robot.get_observation()
        robot.execute_action({"action": 1})
    # No cleanup: the process "dies" here, in the middle of writing a line.
    with open(robot.session_dir / "events.jsonl", "a") as f:
        f.write('{"type": "action", "index": 5, "t": 1.0, "act')
    reader = RecordingReader(robot.session_dir)
    assert len(reader) == 5 and reader.num_observations == 5
    assert reader.metadata["ended"] is None  # never closed, still readable


def test_selector_metadata_with_numpy_values_is_recorded(tmp_path):
    robot = RecordingRobot(ToroidalDotRobot(ToroidalDotConfig(seed=0)), root=tmp_path)
    robot.get_observation()
    robot.annotate({"uncertainty": np.float32(0.25), "scores": np.array([1, 2]), "model": object})
    robot.execute_action({"action": 1})
    robot.cleanup()
    meta = RecordingReader(robot.session_dir).actions[0]["metadata"]
    assert meta["uncertainty"] == 0.25 and meta["scores"] == [1, 2] and "object" in meta["model"]


def test_malformed_action_is_not_recorded(tmp_path):
    robot = RecordingRobot(ToroidalDotRobot(ToroidalDotConfig(seed=0)), root=tmp_path)
    robot.get_observation()
    with pytest.raises(ValueError, match="action"):
        robot.execute_action({"action": 7})
    robot.execute_action({"action": 0})
    robot.cleanup()
    assert [a["action"] for a in RecordingReader(robot.session_dir).actions] == [{"action": 0}]


def test_reader_refuses_what_is_not_a_session(tmp_path):
    with pytest.raises(FileNotFoundError, match="metadata.json"):
        RecordingReader(tmp_path)
    (tmp_path / "metadata.json").write_text("{not json")
    with pytest.raises(ValueError, match="JSON"):
        RecordingReader(tmp_path)
    with pytest.raises(ValueError, match="max_disk_gb"):
        RecordingRobot(ToroidalDotRobot(), root=tmp_path, max_disk_gb=0)


def test_sequence_recording_counts(tmp_path):
    robot = RecordingRobot(ToroidalDotRobot(ToroidalDotConfig(seed=0)), root=tmp_path)
    stats = RobotRunner(robot, create_sequence_action_selector(robot.action_space, SEQUENCE_DOUBLE_MOVE)).run(
        9, progress=False
    )
    robot.cleanup()
    assert stats["action_counts"] == {'{"action":1}': 6, '{"action":0}': 3}
    assert json.loads((robot.session_dir / "metadata.json").read_text())["num_actions"] == 9
