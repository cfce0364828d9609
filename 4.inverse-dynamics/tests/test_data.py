"""Data tests: determinism per seed, the overlay and its mask, the label split."""

import numpy as np
import pytest

from data_utils import (
    BUTTONS,
    HUD_MASK,
    HUD_SIZE,
    add_overlay,
    label_split,
    make_trajectories,
    mask_overlay,
    position_error,
)


def test_trajectories_are_deterministic_per_seed():
    for world in ("dot", "wall"):
        a, b = make_trajectories(world, 3, 5, seed=1), make_trajectories(world, 3, 5, seed=1)
        assert a["frames"].shape == (3, 5, 64, 64, 3) and a["frames"].dtype == np.uint8
        for key in ("frames", "actions", "positions"):
            assert np.array_equal(a[key], b[key])
        c = make_trajectories(world, 3, 5, seed=2)
        assert not np.array_equal(a["frames"], c["frames"])


def test_recorded_positions_match_the_frames():
    for world in ("dot", "wall"):
        d = make_trajectories(world, 4, 6, seed=3)
        err = position_error(d["frames"].reshape(-1, 64, 64, 3), d["positions"].reshape(-1, 2), world)
        assert err.max() < 0.2, (world, err.max())


def test_overlay_shows_the_action_taken_at_each_frame():
    d = make_trajectories("dot", 6, 5, seed=4)
    hud, shown = add_overlay(d["frames"], d["actions"], seed=9)
    again, _ = add_overlay(d["frames"], d["actions"], seed=9)
    assert np.array_equal(hud, again) and shown.shape == (6, 5)
    assert np.array_equal(shown[:, :-1], d["actions"])  # frame t shows a_t
    blank, shown = add_overlay(np.zeros_like(d["frames"]), d["actions"], seed=9)  # the overlay alone
    for i in range(6):
        for t in range(5):
            img = blank[i, t].astype(int)
            box_y, box_x = np.nonzero(img.sum(-1) > 0)
            assert box_x.max() - box_x.min() + 1 == box_y.max() - box_y.min() + 1 == HUD_SIZE
            ys, xs = np.nonzero((img[..., 1] > 120) & (img[..., 0] < 60))  # the lit (green) button
            assert len(ys) == 9
            bx, by = BUTTONS[int(shown[i, t])]
            assert (xs.min() - box_x.min(), ys.min() - box_y.min()) == (bx + 1, by + 1)
    assert blank[..., HUD_MASK:, :, :].max() == 0 and blank[..., HUD_MASK:, :].max() == 0


def test_the_mask_removes_the_overlay_completely():
    d = make_trajectories("dot", 5, 4, seed=5)
    hud, _ = add_overlay(d["frames"], d["actions"], seed=1)
    assert not np.array_equal(hud, d["frames"])
    assert np.array_equal(mask_overlay(hud), mask_overlay(d["frames"]))


def test_label_split():
    a = label_split(1000, 0.05, seed=0)
    assert len(a) == 50 and np.array_equal(a, label_split(1000, 0.05, seed=0))
    assert len(np.unique(a)) == 50 and a.max() < 1000
    assert len(label_split(10, 0.001, seed=0)) == 1  # at least one labelled trajectory
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        label_split(10, 0.0, seed=0)
