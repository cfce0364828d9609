"""Data tests: the worlds are valid gymnasium envs, deterministic per seed and unchanged; the dataset
cache; the overlay and its mask, the label split."""

import hashlib

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import data_utils
from data_utils import (
    BUTTONS,
    HUD_MASK,
    HUD_SIZE,
    add_overlay,
    label_split,
    load_trajectories,
    make_env,
    make_trajectories,
    mask_overlay,
    position_error,
)

# sha1 of frames, actions and positions of make_trajectories(world, 3, 5, seed=0), recorded with the
# simulator of the published runs (before the worlds became gymnasium envs): the data must not change.
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


def test_the_data_is_byte_identical_to_the_published_runs():
    for world, hashes in PUBLISHED.items():
        d = make_trajectories(world, 3, 5, seed=0)
        got = tuple(hashlib.sha1(d[k].tobytes()).hexdigest() for k in ("frames", "actions", "positions"))
        assert got == hashes, world


def test_trajectories_are_cached_as_a_hugging_face_dataset(tmp_path, monkeypatch):
    monkeypatch.setattr(data_utils, "DATA_DIR", tmp_path)
    for world in ("dot", "wall"):
        first = load_trajectories(world, 2, 4, seed=321, quiet=True)
        again = load_trajectories(world, 2, 4, seed=321, quiet=True)  # from the Arrow files
        assert all(np.array_equal(first[k], again[k]) and first[k].dtype == again[k].dtype for k in first)
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert len(saved) == 2 and all((tmp_path / s / "dataset_info.json").exists() for s in saved)
    assert not list(tmp_path.rglob("*.npz"))


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
