"""The robots themselves: the toroidal dot's seed semantics, the simulated JetBot room, the contract."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from robots import (
    JetBotInterface,
    RobotInterface,
    ToroidalDotConfig,
    ToroidalDotEnvironment,
    ToroidalDotRobot,
)
from robots.sim_room import SimRoomEnv, SimulatedJetBot


def dot_centre(frame: np.ndarray) -> tuple[float, float]:
    """The white pixels' mean (x, y) (use away from the x border)."""
    ys, xs = np.nonzero(frame[..., 0])
    return xs.mean(), ys.mean()


def test_toroidal_dot_seed_semantics():
    env = ToroidalDotEnvironment(ToroidalDotConfig(seed=0))
    env.x, env.y = 100, 50
    frame = env.render()
    assert frame.shape == (224, 224, 3) and frame.dtype == np.uint8
    assert set(np.unique(frame)) == {0, 255} and (frame[..., 0] > 0).sum() == 13  # a radius-2 disc
    assert dot_centre(frame) == (100, 50)
    assert dot_centre(env.step(1)[0]) == (107, 50)  # action 1: 7 px to the right
    assert dot_centre(env.step(0)[0]) == (107, 50)  # action 0: stay
    env.x = 220
    wrapped = env.step(1)[0]  # 227 wraps to 3; the disc straddling the border stays whole before that
    assert env.position == (3, 50) and (wrapped[..., 0] > 0).sum() == 13
    env.x = 223
    assert (env.render()[..., 0] > 0).sum() == 13  # half on the right edge, half on the left
    with pytest.raises(ValueError, match="0 .stay. or 1"):
        env.step(2)


def test_toroidal_dot_reset_is_random_but_seeded():
    starts = [ToroidalDotEnvironment(ToroidalDotConfig(seed=s)).position for s in range(5)]
    assert len(set(starts)) == 5
    assert ToroidalDotEnvironment(ToroidalDotConfig(seed=3)).position == starts[3]


def test_toroidal_dot_robot_keeps_the_interface():
    robot = ToroidalDotRobot(ToroidalDotConfig(seed=0))
    assert isinstance(robot, RobotInterface) and robot.robot_type == "toroidal_dot" and not robot.finished
    assert robot.action_space == [{"action": 0}, {"action": 1}]
    before = robot.get_observation().copy()
    assert robot.execute_action({"action": 1}) is True and not np.array_equal(before, robot.get_observation())
    for bad in ({"action": 3}, {"move": 1}, "1", None):
        with pytest.raises(ValueError, match="expected an action dict"):
            robot.execute_action(bad)
    robot.cleanup()
    with pytest.raises(TypeError):
        RobotInterface()  # abstract: a robot must implement the four members


def test_simulated_room_moves_with_its_motors():
    now = [0.0]
    bot = SimulatedJetBot(size=96, seed=1, clock=lambda: now[0])
    first = bot.read_frame()
    assert first.shape == (96, 96, 3) and first.dtype == np.uint8
    now[0] += 1.0
    assert np.array_equal(first, bot.read_frame())  # motors off: nothing moves
    heading = bot.heading
    bot.set_motors(0.0, 0.12)  # right wheel only: turns left (counter-clockwise), creeps forward
    now[0] += 0.2
    turned = bot.read_frame()
    assert bot.heading - heading == pytest.approx(0.2, abs=1e-6)  # 0.12 m/s / 0.12 m * 0.2 s
    assert np.abs(turned.astype(int) - first).mean() > 2
    bot.set_motors(0.0, 0.0)
    x = bot.x
    now[0] += 5.0
    assert bot.x == x and np.array_equal(turned, bot.read_frame())
    bot.set_motors(1.0, 1.0)  # full speed ahead for 10 s: the wall stops it inside the room
    now[0] += 10.0
    bot.read_frame()
    assert bot.radius <= bot.x <= bot.room - bot.radius and bot.radius <= bot.y <= bot.room - bot.radius


def test_jetbot_action_validation_needs_no_robot():
    ok = {"motor_left": 0.0, "motor_right": 0.12, "duration": 0.2}
    assert JetBotInterface.check_action(ok) == (0.0, 0.12, 0.2)
    for bad in (
        {"motor_left": 0.0, "motor_right": 0.12},
        {**ok, "speed": 1},
        {**ok, "duration": 0},
        {**ok, "duration": 60},
        {**ok, "motor_left": float("nan")},
        {**ok, "motor_right": True},
        [0, 0.12, 0.2],
    ):
        with pytest.raises(ValueError):
            JetBotInterface.check_action(bad)


@pytest.mark.parametrize(
    "make", [lambda: ToroidalDotEnvironment(ToroidalDotConfig(seed=0)), lambda: SimRoomEnv(size=64)]
)
def test_both_worlds_pass_gymnasiums_env_checker_and_one_seed_gives_the_same_frames(make):
    env = make()
    check_env(env, skip_render_check=False)
    runs = []
    for _ in range(2):
        frame, _ = env.reset(seed=5)
        env.action_space.seed(5)
        frames = [frame] + [env.step(env.action_space.sample())[0] for _ in range(4)]
        runs.append(np.stack(frames))
    assert np.array_equal(runs[0], runs[1]) and not np.array_equal(runs[0][0], env.reset(seed=6)[0])


def test_sim_room_env_turns_with_one_wheel_and_refuses_bad_motors():
    env = SimRoomEnv(size=64)
    first, info = env.reset(seed=1)
    frame, reward, terminated, truncated, after = env.step([0.0, 0.12])  # right wheel: turn left
    assert after["heading"] - info["heading"] == pytest.approx(0.2, abs=1e-6)  # 0.12 m/s / 0.12 m * 0.2 s
    assert np.abs(frame.astype(int) - first).mean() > 2  # the view panned
    assert (reward, terminated, truncated) == (0.0, False, False)  # no task: never done
    still, *_ = env.step([0.0, 0.0])
    assert np.array_equal(frame, still)  # the robot stopped at the end of the last action
    with pytest.raises(ValueError, match="two finite motor speeds"):
        env.step([np.nan, 0.0])
