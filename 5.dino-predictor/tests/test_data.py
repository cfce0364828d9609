"""Data tests: the arm is a valid gymnasium env, deterministic per seed; the dataset cache; the views
that differ only in nuisance; goal-reaching tasks."""

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import data_utils
from data_utils import (
    ArmReachEnv,
    end_effector,
    load_trajectories,
    make_tasks,
    make_trajectories,
    step_joints,
)


def test_the_arm_passes_gymnasiums_env_checker():
    check_env(ArmReachEnv(), skip_render_check=False)
    check_env(ArmReachEnv(nuisance=False))


def test_one_seed_gives_the_same_frames_twice():
    a, b = make_trajectories(3, 5, seed=1), make_trajectories(3, 5, seed=1)
    assert a["frames"].shape == (3, 5, 64, 64, 3) and a["frames"].dtype == np.uint8
    assert a["actions"].shape == (3, 4, 2) and a["proprio"].shape == (3, 5, 4) and a["q"].shape == (3, 5, 2)
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    assert not np.array_equal(a["frames"], make_trajectories(3, 5, seed=2)["frames"])
    assert np.abs(a["actions"]).max() <= 1


def test_the_two_views_show_one_pose_under_different_nuisance():
    d = make_trajectories(4, 3, seed=3)
    assert (d["frames"] != d["frames_alt"]).mean() > 0.5  # another background, tint and distractor
    clean = data_utils.render_many(d["q"][0].astype(np.float64), data_utils.Nuisance.sample(None, on=False))
    arm = clean.max(-1) > 0  # where the arm is drawn on a black scene
    assert arm.mean() > 0.03  # the body fills a good part of the frame, not one dot


def test_dataset_is_cached_as_a_hugging_face_dataset(tmp_path):
    first = load_trajectories(2, 4, seed=321, quiet=True, data_dir=tmp_path)
    saved = list(tmp_path.iterdir())
    assert len(saved) == 1 and (saved[0] / "dataset_info.json").exists()  # save_to_disk's layout
    again = load_trajectories(2, 4, seed=321, quiet=True, data_dir=tmp_path)  # from the Arrow files
    assert all(np.array_equal(first[k], again[k]) and first[k].dtype == again[k].dtype for k in first)


def test_frame_skip_and_joint_limits():
    q = step_joints(np.zeros(2), np.array([1.0, -0.5]))
    assert np.allclose(q, [0.25, -0.125])  # 5 sub-steps of at most 0.05 rad
    q = step_joints(np.array([np.pi - 0.1, 2.5]), np.array([1.0, 1.0]))
    assert -np.pi <= q[0] < -np.pi + 0.2 and q[1] == pytest.approx(2.6)  # the shoulder wraps, the elbow stops
    env = ArmReachEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        env.step([2.0, 0.0])


def test_tasks_are_deterministic_reachable_and_far_enough():
    a, b = make_tasks(5, seed=3), make_tasks(5, seed=3)
    for ta, tb in zip(a, b, strict=True):
        assert np.array_equal(ta["q_goal"], tb["q_goal"]) and np.array_equal(
            ta["goal_scene"].tint, tb["goal_scene"].tint
        )
        assert np.linalg.norm(end_effector(ta["q_start"]) - end_effector(ta["q_goal"])) >= 0.15
        assert not np.array_equal(ta["start_scene"].background, ta["goal_scene"].background)


def test_column_reads_what_datasets_numpy_format_reads():
    """``data_utils.column`` reads the Arrow buffers itself; it must give what ``with_format("numpy")``
    gives: across several record batches, after a ``select`` (an indices mapping), and row by row for a
    column whose rows differ in length."""
    import datasets

    frames = np.random.default_rng(0).integers(0, 256, (5, 2, 4, 4, 3), dtype=np.uint8)
    ragged = [[1], [2, 3], [], [4], [5, 6, 7]]
    features = datasets.Features(
        {
            "frames": datasets.Array4D((2, 4, 4, 3), "uint8"),
            "pair": datasets.Sequence(datasets.Value("float32"), length=2),
            "ragged": datasets.Sequence(datasets.Value("int64")),
        }
    )
    rows = {"frames": frames, "pair": frames[:, 0, 0, :2, 0].astype(np.float32), "ragged": ragged}
    ds = datasets.concatenate_datasets(  # three record batches, as the chunked caches are written
        [
            datasets.Dataset.from_dict({k: v[i : i + 2] for k, v in rows.items()}, features=features)
            for i in (0, 2, 4)
        ]
    )
    assert ds.with_format("arrow")["frames"].num_chunks == 3
    for name, dtype in (("frames", np.uint8), ("pair", np.float32)):
        got, want = data_utils.column(ds, name), ds.with_format("numpy", dtype=dtype)[:][name]
        assert got.dtype == want.dtype == dtype and got.shape == want.shape and np.array_equal(got, want)
    assert np.array_equal(data_utils.column(ds, "frames"), frames)
    assert np.array_equal(data_utils.column(ds.select([4, 0]), "frames"), frames[[4, 0]])
    assert [list(r) for r in data_utils.column(ds, "ragged")] == ragged
