"""Data tests: the worlds are valid gymnasium envs, deterministic per seed and unchanged; the dataset
cache; a learner's own dataset; true positions, the tracker and the torus distance."""

import hashlib

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import data_utils
from data_utils import (
    displacement,
    load_own_dataset,
    load_trajectories,
    locate_object,
    make_env,
    make_trajectories,
    position_error,
)

# sha1 of frames, actions and positions of make_trajectories(world, 3, 5, seed=0), recorded with the
# simulator of the runs measured in this chapter's README and NOTES (before the worlds became gymnasium
# envs): the data must not change.
PUBLISHED = {
    "dot": ("9b58b2a557064a85299189182e84d35795ede3b6", "1758180081d8c0b90927ac55d631405bc5716ffa",
            "346e603cacc9ce1675ef6fd5f10430239c866baf"),
    "wall": ("88b1cd64d6e4c1d2cfc60325c15939489d8f1bec", "09021ca56c7397c8edc47334b8c596094113d3fc",
             "289c1d5866dae000fafa0c17d53ef9633748167d"),
}  # fmt: skip


def test_both_worlds_pass_gymnasiums_env_checker():
    for world in ("dot", "wall"):
        check_env(make_env(world), skip_render_check=False)


def test_one_seed_gives_the_same_frames_twice():
    for world in ("dot", "wall"):
        runs = []
        for _ in range(2):
            env = make_env(world)
            frame, _ = env.reset(seed=7)
            frames = [frame]
            env.action_space.seed(7)
            for _ in range(5):
                frames.append(env.step(env.action_space.sample())[0])
            runs.append(np.stack(frames))
        assert np.array_equal(runs[0], runs[1]) and runs[0].dtype == np.uint8
        assert np.array_equal(runs[0][-1], env.render())
        assert not np.array_equal(runs[0][0], make_env(world).reset(seed=8)[0])


def test_the_data_is_byte_identical_to_the_measured_runs():
    for world, hashes in PUBLISHED.items():
        d = make_trajectories(world, 3, 5, seed=0)
        got = tuple(hashlib.sha1(d[k].tobytes()).hexdigest() for k in ("frames", "actions", "positions"))
        assert got == hashes, world


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


def test_trajectories_are_cached_as_a_hugging_face_dataset(tmp_path, monkeypatch):
    monkeypatch.setattr(data_utils, "DATA_DIR", tmp_path)
    for world in ("dot", "wall"):
        first = load_trajectories(world, 2, 4, seed=321, quiet=True)
        again = load_trajectories(world, 2, 4, seed=321, quiet=True)  # from the Arrow files
        assert all(np.array_equal(first[k], again[k]) and first[k].dtype == again[k].dtype for k in first)
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert len(saved) == 2 and all((tmp_path / s / "dataset_info.json").exists() for s in saved)
    assert not list(tmp_path.rglob("*.npz"))
    other = tmp_path / "elsewhere"  # --out moves the cache with the other outputs
    load_trajectories("dot", 2, 4, seed=321, quiet=True, data_dir=other)
    assert len(list(other.iterdir())) == 1


def save_own(path, frames, actions) -> None:
    """What a learner does: their episodes as a datasets.Dataset with the README's schema."""
    import datasets

    t = frames.shape[1]
    action = (
        datasets.Sequence(datasets.Value("int64"), length=t - 1)
        if actions.ndim == 2
        else datasets.Array2D((t - 1, actions.shape[-1]), "float32")
    )
    features = datasets.Features({"frames": datasets.Array4D((t, 64, 64, 3), "uint8"), "actions": action})
    ds = datasets.Dataset.from_dict({"frames": list(frames), "actions": list(actions)}, features=features)
    ds.save_to_disk(str(path))


def test_a_learners_dataset_is_read_and_checked(tmp_path):
    d = make_trajectories("wall", 3, 5, seed=2)
    save_own(tmp_path / "wall", d["frames"], d["actions"])
    own = load_own_dataset(tmp_path / "wall", min_frames=4)
    assert np.array_equal(own["frames"], d["frames"]) and own["frames"].dtype == np.uint8
    assert np.array_equal(own["actions"], d["actions"]) and own["actions"].dtype == np.float32
    with pytest.raises(ValueError, match="at least 6"):
        load_own_dataset(tmp_path / "wall", min_frames=6)
    save_own(tmp_path / "big", d["frames"], d["actions"] * 3)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        load_own_dataset(tmp_path / "big", min_frames=4)
    with pytest.raises(ValueError, match="no such folder"):
        load_own_dataset(tmp_path / "missing", min_frames=4)


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
