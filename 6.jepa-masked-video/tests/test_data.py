"""Data tests: determinism per seed, shapes, the probe label, the room's physics."""

import numpy as np
import pytest

from data_utils import PointMassRoom, direction_label, make_ball_clips, make_room_trajectories


def test_ball_clips_are_deterministic_for_a_seed():
    a, b, c = (make_ball_clips(4, 8, seed) for seed in (3, 3, 4))
    assert a["frames"].shape == (4, 8, 64, 64, 3) and a["frames"].dtype == np.uint8
    assert np.array_equal(a["frames"], b["frames"]) and np.array_equal(a["labels"], b["labels"])
    assert not np.array_equal(a["frames"], c["frames"])
    assert ((a["labels"] >= 0) & (a["labels"] < 8)).all()


def test_room_trajectories_are_deterministic_and_consistent():
    a, b = make_room_trajectories(3, 6, 5), make_room_trajectories(3, 6, 5)
    for k in ("frames", "actions", "proprio"):
        assert np.array_equal(a[k], b[k])
    assert a["actions"].shape == (3, 6, 2) and a["proprio"].shape == (3, 6, 2)
    step = np.linalg.norm(np.diff(a["proprio"], axis=1), axis=-1)
    assert (step <= 0.1 * np.sqrt(2) + 1e-6).all()  # an action moves at most 2 x 0.05 per axis


def test_direction_label_sectors():
    assert direction_label(np.array([1.0, 0.0])) == 0
    assert direction_label(np.array([0.0, 1.0])) == 2  # y points down: moving down is 90 degrees
    assert direction_label(np.array([-1.0, -0.01])) == 4


def test_room_refuses_bad_actions_and_layouts():
    env = PointMassRoom("open", seed=0)
    with pytest.raises(ValueError, match="dx, dy"):
        env.step([2.0, 0.0])
    with pytest.raises(ValueError, match="layout"):
        PointMassRoom("maze")
