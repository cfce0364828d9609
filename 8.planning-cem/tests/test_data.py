"""Data tests: determinism per seed, the batched physics, tasks, PushT (skipped if gym-pusht is missing)."""

import importlib.util

import numpy as np
import pytest

from data_utils import PointMassRoom, make_tasks, make_trajectories, step_positions


def test_trajectories_are_deterministic_per_seed():
    for world in ("wall", "umaze"):
        a, b = make_trajectories(world, 3, 5, seed=1), make_trajectories(world, 3, 5, seed=1)
        assert a["frames"].shape == (3, 5, 64, 64, 3) and a["frames"].dtype == np.uint8
        assert a["actions"].shape == (3, 4, 2) and a["proprio"].shape == (3, 5, 2)
        for key in ("frames", "actions", "proprio"):
            assert np.array_equal(a[key], b[key])
        assert not np.array_equal(a["frames"], make_trajectories(world, 3, 5, seed=2)["frames"])


def test_the_wall_blocks_and_the_door_lets_through():
    env = PointMassRoom("wall")
    env.reset([0.3, 0.2])  # left room, level with the wall
    for _ in range(4):
        env.step([1.0, 0.0])
    assert env.pos[0] < 0.47 - 0.05 + 1e-9  # stopped by the wall
    env.reset([0.3, 0.5])  # level with the door
    for _ in range(4):
        env.step([1.0, 0.0])
    assert env.pos[0] > 0.6  # through the door


def test_batched_physics_matches_the_single_environment():
    env, rng = PointMassRoom("umaze", seed=3), np.random.default_rng(0)
    starts = np.array([env.sample_free() for _ in range(16)])
    acts = rng.uniform(-1, 1, (16, 2))
    batch = step_positions(env.walls, starts, acts)
    for s, a, b in zip(starts, acts, batch, strict=True):
        env.reset(s)
        env.step(a)
        assert np.allclose(env.pos, b)


def test_tasks_are_seeded_and_far_enough_apart():
    a, b = make_tasks("wall", 10, seed=5), make_tasks("wall", 10, seed=5)
    assert a.shape == (10, 2, 2) and np.array_equal(a, b)
    assert (np.linalg.norm(a[:, 0] - a[:, 1], axis=1) >= 0.3).all()
    assert not np.array_equal(a, make_tasks("wall", 10, seed=6))


def test_bad_actions_and_worlds_are_refused():
    with pytest.raises(ValueError, match="unknown environment"):
        PointMassRoom("maze")
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        PointMassRoom("wall").step([2.0, 0.0])


@pytest.mark.skipif(importlib.util.find_spec("gym_pusht") is None, reason="gym-pusht is not installed")
def test_pusht_tasks_and_success_criterion():
    from pusht import make_pusht_tasks, pusht_success

    (start, goal, frame), *_ = make_pusht_tasks(1, seed=0)
    assert start.shape == goal.shape == (5,) and frame.shape == (64, 64, 3)
    assert pusht_success(goal, goal)[0]
    far = goal + np.array([0, 0, 30, 0, 0])  # the block 30 px away
    assert not pusht_success(goal, far)[0]
    turned = goal + np.array([0, 0, 0, 0, np.pi / 6])
    assert not pusht_success(goal, turned)[0]


def test_experience_distances_go_round_the_wall():
    from experience_graph import experience_distances, pair_targets

    from data_utils import distance_field, geodesic

    d = make_trajectories("wall", 300, 16, seed=0)
    table = experience_distances(d["proprio"], grid=16)
    assert table.shape == (256, 256) and np.all(np.diag(table) == 0)
    left, right = np.array([[0.3, 0.15]]), np.array([[0.7, 0.15]])  # level with each other, wall between
    through_door = pair_targets(table, left, right, grid=16)[0]
    assert through_door > 0.4 + 0.2  # the straight line is 0.4; the way through the door is ~0.8
    walls = PointMassRoom("wall").walls
    true = geodesic(distance_field(walls, right[0]), right[0], left)[0]
    assert abs(through_door - true) < 0.15 * true  # close to the true shortest path (no map was used)
    near = pair_targets(table, left, left + [[0.01, 0.0]], grid=16)[0]
    assert np.isclose(near, 0.01)  # inside one cell: the straight line
