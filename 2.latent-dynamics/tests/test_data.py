"""Data tests: determinism per seed, caching, the ball tracker."""

import numpy as np

from data_utils import BouncingBalls, ball_error, load_videos, locate_balls, make_videos


def test_videos_are_deterministic_per_seed():
    a, b = make_videos(3, 6, seed=1), make_videos(3, 6, seed=1)
    assert a.shape == (3, 6, 64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, make_videos(3, 6, seed=2))


def test_load_videos_caches():
    first = load_videos(2, 5, seed=321, quiet=True)
    assert np.array_equal(first, load_videos(2, 5, seed=321, quiet=True))


def test_tracker_finds_each_ball_by_colour():
    env = BouncingBalls(seed=0, max_balls=3)  # three balls that do not overlap (overlaps bias centroids)
    frame = env.render()[None]
    centroids, found = locate_balls(frame)
    assert found[0].sum() == len(env.radius)
    for k, c in enumerate(env.colour_idx):
        assert np.linalg.norm(centroids[0, c] - env.pos[k]) < 0.3
    shifted = np.roll(frame, 3, axis=2)  # every ball 3 px to the right
    assert np.allclose(ball_error(shifted, frame), 3.0, atol=0.3)
    assert ball_error(np.zeros_like(frame), frame)[0] > 5  # erased balls are an error, not a skip
