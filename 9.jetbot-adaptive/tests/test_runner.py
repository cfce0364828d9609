"""The runner, its selectors and interactive mode; the example scripts end to end."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from robots import ToroidalDotConfig, ToroidalDotRobot
from robots.runner import (
    SEQUENCE_ALTERNATE,
    SEQUENCE_ALWAYS_MOVE,
    SEQUENCE_ALWAYS_STAY,
    SEQUENCE_DOUBLE_MOVE,
    SEQUENCE_TRIPLE_MOVE,
    RobotRunner,
    create_constant_action_selector,
    create_random_action_selector,
    create_sequence_action_selector,
    parse_typed_action,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jetbot_test_helpers import assert_one_line_error, copy_chapter, run  # noqa: E402

SPACE = [{"action": 0}, {"action": 1}]


def take(selector, n):
    """The first ``n`` actions' values of a dot selector."""
    return [selector(None)[0]["action"] for _ in range(n)]


def test_sequences_and_selectors():
    assert take(create_sequence_action_selector(SPACE, SEQUENCE_ALWAYS_STAY), 3) == [0, 0, 0]
    assert take(create_sequence_action_selector(SPACE, SEQUENCE_ALWAYS_MOVE), 3) == [1, 1, 1]
    assert take(create_sequence_action_selector(SPACE, SEQUENCE_ALTERNATE), 4) == [0, 1, 0, 1]
    assert take(create_sequence_action_selector(SPACE, SEQUENCE_DOUBLE_MOVE), 6) == [1, 1, 0, 1, 1, 0]
    assert take(create_sequence_action_selector(SPACE, SEQUENCE_TRIPLE_MOVE), 5) == [1, 1, 1, 0, 1]
    once = create_sequence_action_selector(SPACE, [1, 0], repeat=False)
    assert take(once, 2) == [1, 0] and once(None)[0] is None
    action, meta = create_constant_action_selector({"action": 1})(None)
    assert action == {"action": 1} and meta == {"selector": "constant"}
    a, b = create_random_action_selector(SPACE, 5), create_random_action_selector(SPACE, 5)
    assert take(a, 20) == take(b, 20) and 0 < sum(take(a, 100)) < 100
    with pytest.raises(ValueError, match="index 2"):
        create_sequence_action_selector(SPACE, [0, 2])


def test_runner_moves_the_dot_and_counts():
    robot = ToroidalDotRobot(ToroidalDotConfig(seed=0))
    x0 = robot.env.x
    stats = RobotRunner(robot, create_sequence_action_selector(SPACE, SEQUENCE_TRIPLE_MOVE)).run(
        8, progress=False
    )
    assert stats["steps"] == 8 and stats["stop_reason"] == "completed"
    assert stats["action_counts"] == {'{"action":1}': 6, '{"action":0}': 2}
    assert robot.env.x == (x0 + 6 * 7) % 224 and stats["steps_per_second"] > 0
    assert set(stats["mean_ms"]) == {"observe_ms", "select_ms", "act_ms"}


def test_interactive_mode_accepts_overrides_and_stops():
    answers = iter(["", "1", "banana", '{"action": 0}', "5", '{"action": 4}', "stop"])
    robot = ToroidalDotRobot(ToroidalDotConfig(seed=0))
    chosen = []
    runner = RobotRunner(
        robot,
        create_constant_action_selector({"action": 1}),
        interactive=True,
        input_fn=lambda prompt: next(answers),
        on_step=lambda step, obs, action, meta: chosen.append(action["action"]),
    )
    stats = runner.run(10)
    assert chosen == [1, 1, 0] and stats["stop_reason"] == "stopped by user"
    assert parse_typed_action(" 1 ", SPACE) == {"action": 1}
    with pytest.raises(ValueError, match="out of range"):
        parse_typed_action("9", SPACE)


def test_runner_waits_for_missing_frames_then_stops():
    class Blind(ToroidalDotRobot):
        def get_observation(self):
            return None

    stats = RobotRunner(Blind(), create_constant_action_selector({"action": 0}), max_missing_frames=2).run(3)
    assert stats["steps"] == 0 and stats["stop_reason"].startswith("no frames")


@pytest.fixture(scope="module")
def chapter_copy(tmp_path_factory) -> Path:
    """A copy of the chapter, so the examples' recordings stay out of your saved/ folder."""
    return copy_chapter(tmp_path_factory.mktemp("chapter9_runner") / "9.jetbot-adaptive")


def test_dot_example_records_and_replay_example_replays(chapter_copy):
    out = run(
        chapter_copy,
        "robots/examples/toroidal_dot_runner_example.py",
        "--steps",
        "12",
        "--no-display",
        "--record",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "session saved" in out.stdout and "steps per second" in out.stdout
    out = run(chapter_copy, "robots/examples/replay_session_example.py", "--no-display")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "toroidal_dot/session_" in out.stdout and "0 actions differed" in out.stdout
    assert "robot finished" in out.stdout


def test_example_flag_errors_are_one_line(chapter_copy):
    out = run(chapter_copy, "robots/examples/toroidal_dot_runner_example.py", "--steps", "-3")
    assert out.returncode == 2 and "usage:" in out.stderr and "Traceback" not in out.stderr
    empty = chapter_copy / "no_sessions_here"
    empty.mkdir()
    out = run(chapter_copy, "robots/examples/replay_session_example.py", "--root", str(empty), "--no-display")
    assert_one_line_error(out, 2, "no recorded sessions")


def test_frames_are_images():
    robot = ToroidalDotRobot(ToroidalDotConfig(seed=1))
    frame = robot.get_observation()
    assert frame.shape == (224, 224, 3) and frame.dtype == np.uint8
