"""Data tests: determinism per seed, caching, true positions, the tracker and the torus distance."""

import numpy as np

from data_utils import displacement, load_trajectories, locate_object, make_trajectories, position_error


def test_trajectories_are_deterministic_per_seed():
    for world in ("dot", "wall"):
        a, b = make_trajectories(world, 3, 5, seed=1), make_trajectories(world, 3, 5, seed=1)
        assert a["frames"].shape == (3, 5, 64, 64, 3) and a["frames"].dtype == np.uint8
        assert a["positions"].shape == (3, 5, 2)
        for key in ("frames", "actions", "positions"):
            assert np.array_equal(a[key], b[key])
        assert not np.array_equal(a["frames"], make_trajectories(world, 3, 5, seed=2)["frames"])
    dot, wall = make_trajectories("dot", 2, 4, 0), make_trajectories("wall", 2, 4, 0)
    assert dot["actions"].shape == (2, 3) and dot["actions"].max() < 5
    assert wall["actions"].shape == (2, 3, 2) and np.abs(wall["actions"]).max() <= 1


def test_load_trajectories_caches():
    first = load_trajectories("dot", 2, 4, seed=321, quiet=True)
    again = load_trajectories("dot", 2, 4, seed=321, quiet=True)
    assert all(np.array_equal(first[k], again[k]) for k in first)


def test_recorded_positions_match_the_frames():
    for world in ("dot", "wall"):
        d = make_trajectories(world, 4, 6, seed=3)
        err, vanished = position_error(
            d["frames"].reshape(-1, 64, 64, 3), d["positions"].reshape(-1, 2), world
        )
        assert err.max() < 0.2 and not vanished.any(), (world, err.max())
    blank = np.zeros((2, 64, 64, 3), dtype=np.uint8)  # the object erased: the tracker falls back, and says so
    err, vanished = position_error(blank, np.array([[31.5, 31.5], [0.0, 31.5]]), "dot")
    assert vanished.all() and np.allclose(err, [0.0, 31.5])


def test_dot_moves_two_pixels_per_action_and_wraps():
    d = make_trajectories("dot", 5, 8, seed=4)
    step = np.linalg.norm(displacement(d["positions"][:, :-1], d["positions"][:, 1:], "dot"), axis=-1)
    assert np.allclose(step, np.where(d["actions"] == 0, 0.0, 2.0))
    assert np.allclose(displacement(np.array([63.0, 0.0]), np.array([1.0, 62.0]), "dot"), [2.0, -2.0])
    _, found = locate_object(np.zeros((1, 64, 64, 3), dtype=np.uint8), "dot")
    assert not found[0]
