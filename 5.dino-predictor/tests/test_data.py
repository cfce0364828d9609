"""Data tests: determinism per seed, caching, the frame skip, walls that block, goal-reaching tasks."""

import numpy as np
import pytest

from data_utils import PointMassRoom, load_trajectories, make_tasks, make_trajectories


@pytest.mark.parametrize("world", ["wall", "umaze"])
def test_trajectories_are_deterministic_per_seed(world):
    a, b = make_trajectories(world, 3, 5, seed=1), make_trajectories(world, 3, 5, seed=1)
    assert a["frames"].shape == (3, 5, 64, 64, 3) and a["frames"].dtype == np.uint8
    assert a["actions"].shape == (3, 4, 2) and a["proprio"].shape == (3, 5, 2)
    for key in ("frames", "actions", "proprio"):
        assert np.array_equal(a[key], b[key])
    assert not np.array_equal(a["frames"], make_trajectories(world, 3, 5, seed=2)["frames"])
    assert np.abs(a["actions"]).max() <= 1


def test_load_trajectories_caches():
    first = load_trajectories("wall", 2, 4, seed=321, quiet=True)
    again = load_trajectories("wall", 2, 4, seed=321, quiet=True)
    assert all(np.array_equal(first[k], again[k]) for k in first)


def test_frame_skip_holds_the_action_for_several_sub_steps():
    env = PointMassRoom("wall", frame_skip=5)
    env.reset([0.25, 0.5])
    env.step([1.0, 0.0])
    assert np.allclose(env.pos, [0.35, 0.5])  # 5 sub-steps of 0.02
    one = PointMassRoom("wall", frame_skip=1)
    one.reset([0.25, 0.5])
    one.step([1.0, 0.0])
    assert np.allclose(one.pos, [0.27, 0.5])


def test_walls_block_and_the_door_lets_through():
    env = PointMassRoom("wall")
    env.reset([0.3, 0.2])  # level with the upper wall segment
    for _ in range(10):
        env.step([1.0, 0.0])
    assert env.pos[0] < 0.47  # stopped by the wall
    env.reset([0.3, 0.5])  # level with the door
    for _ in range(5):
        env.step([1.0, 0.0])
    assert env.pos[0] > 0.6  # through the door
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        env.step([2.0, 0.0])


def test_tasks_are_deterministic_and_far_enough():
    a, b = make_tasks("wall", 5, seed=3), make_tasks("wall", 5, seed=3)
    assert a.shape == (5, 2, 2) and np.array_equal(a, b)
    assert (np.linalg.norm(a[:, 0] - a[:, 1], axis=1) >= 0.3).all()
