"""Simulator and dataset tests: determinism per seed, world rules, the object locator."""

import numpy as np
import pytest

from data_utils import (
    WORLDS,
    BouncingBalls,
    PointMassRoom,
    ToroidalDot,
    centroid_error,
    load_frames,
    locate_object,
    world_frames,
)


@pytest.mark.parametrize("world", WORLDS)
def test_frames_are_deterministic_per_seed(world):
    a, b = world_frames(world, 30, seed=5), world_frames(world, 30, seed=5)
    assert a.shape == (30, 64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, world_frames(world, 30, seed=6))


def test_load_frames_caches_and_splits_by_seed():
    first = load_frames(4, seed=123, quiet=True)
    again = load_frames(4, seed=123, quiet=True)  # from the cache file this time
    assert np.array_equal(first["frames"], again["frames"])
    assert list(first["world"]) == [0] * 4 + [1] * 4 + [2] * 4
    assert not np.array_equal(first["frames"], load_frames(4, seed=124, quiet=True)["frames"])


def test_toroidal_dot_seed_semantics():
    env = ToroidalDot(seed=0)  # 224 px, radius 2, action 1 = 7 px right, x wraps
    env.pos = np.array([220, 50])
    frame = env.step(1)
    assert frame.shape == (224, 224, 3) and tuple(env.pos) == (3, 50)  # 220 + 7 wraps to 3
    env.step(0)
    assert tuple(env.pos) == (3, 50)
    with pytest.raises(ValueError, match="action"):
        env.step(2)
    env2 = ToroidalDot.small(two_d=True, seed=0)
    env2.pos = np.array([10, 0])
    env2.step(3)  # up wraps y
    assert tuple(env2.pos) == (10, 62)


def test_point_mass_cannot_cross_the_wall_but_passes_the_door():
    env = PointMassRoom("wall", seed=0)
    env.pos = np.array([0.3, 0.2])
    for _ in range(20):
        env.step([1.0, 0.0])
    assert env.pos[0] < 0.47  # stopped by the dividing wall
    env.pos = np.array([0.3, 0.5])  # level with the door
    for _ in range(20):
        env.step([1.0, 0.0])
    assert env.pos[0] > 0.53
    with pytest.raises(ValueError, match="action"):
        env.step([2.0, 0.0])


def test_balls_stay_inside_and_keep_their_speed():
    env = BouncingBalls(seed=3)
    speed = np.linalg.norm(env.vel, axis=1)
    for _ in range(200):
        env.step()
    assert np.all(env.pos >= env.radius[:, None] - 1e-9) and np.all(
        env.pos <= 63 - env.radius[:, None] + 1e-9
    )
    assert np.allclose(np.linalg.norm(env.vel, axis=1), speed)


def test_locator_finds_a_subpixel_dot_and_flags_a_vanished_one():
    env = ToroidalDot.small(seed=0)
    env.pos = np.array([0, 30])  # on the left edge: half of the dot shows on the right
    frame = env.render()[None]
    centroid, found = locate_object(frame, "dot")
    torus_offset = (centroid[0] - [0, 30] + 32) % 64 - 32  # 63.99 and 0.01 are both next to 0
    assert found[0] and np.abs(torus_offset).max() < 0.05
    err, vanished = centroid_error(np.zeros((1, 64, 64, 3), np.float32), frame, "dot")
    assert vanished[0] and err[0] > 20  # an erased dot is an error, not a skipped frame
