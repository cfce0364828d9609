"""Data tests: the balls are a valid gymnasium env, deterministic per seed and unchanged; the Hugging Face
dataset cache; the ball tracker."""

import hashlib

import numpy as np
import pytest
from diagnose import simulate_states
from gymnasium.utils.env_checker import check_env

import data_utils
from data_utils import BouncingBalls, ball_error, load_videos, locate_balls, make_videos, video_array


def sha1(a: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest()


@pytest.mark.filterwarnings("ignore:.*alternative render modes")  # needs gymnasium.make's registry
def test_the_balls_pass_gymnasiums_env_checker():
    env = BouncingBalls()
    check_env(env, skip_render_check=False)
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.uint8 and np.array_equal(obs, env.render())  # the observation is the frame
    assert env.action_space.n == 1 and info["pos"].shape == info["vel"].shape == (len(info["radius"]), 2)
    with pytest.raises(ValueError, match="passive"):
        env.step(1)


def test_one_seed_gives_the_same_frames_twice():
    def episode(seed):  # (6, 64, 64, 3): a reset and five steps
        env = BouncingBalls()
        frames = [env.reset(seed=seed)[0]]
        frames += [env.step(env.action_space.sample())[0] for _ in range(5)]
        return np.stack(frames)

    assert np.array_equal(episode(7), episode(7))
    assert not np.array_equal(episode(7), episode(8))


def test_the_data_is_byte_identical_to_the_published_runs():
    # sha1 of what the simulator produced before it became a gymnasium env (the .npz version), which the
    # checkpoints were trained and measured on; the default sets were checked the same way once:
    # make_videos(2000, 16, 0) 19416373..., make_videos(200, 23, 10000) 5b725c4c... (NOTES.md)
    assert sha1(make_videos(3, 6, seed=1)) == "5e4f8f7e8855919e4e017b944099132764ccdc14"
    assert sha1(make_videos(4, 5, seed=0)) == "d714156f6dd182f2414099bedf259362dc06f47a"


def test_videos_are_deterministic_per_seed():
    a, b = make_videos(3, 6, seed=1), make_videos(3, 6, seed=1)
    assert a.shape == (3, 6, 64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, make_videos(3, 6, seed=2))


def test_videos_are_cached_as_a_hugging_face_dataset(tmp_path):
    first = load_videos(3, 6, seed=1, quiet=True, data_dir=tmp_path)
    (saved,) = tmp_path.iterdir()
    assert (saved / "dataset_info.json").exists() and not list(tmp_path.rglob("*.npz"))
    assert first.features["frames"].shape == (6, 64, 64, 3) and first.features["frames"].dtype == "uint8"
    again = load_videos(3, 6, seed=1, quiet=True, data_dir=tmp_path)  # from the Arrow files
    frames = video_array(again)
    assert frames.dtype == np.uint8 and sha1(frames) == "5e4f8f7e8855919e4e017b944099132764ccdc14"
    assert list(again.with_format("numpy")["source"]) == [0, 1, 2]
    assert len(list(tmp_path.iterdir())) == 1  # read back, not simulated and saved again


def test_the_diagnosis_re_simulates_the_same_balls():
    states = simulate_states(2, 5, seed=1)
    frames = make_videos(2, 5, seed=1)
    for s, video in zip(states, frames, strict=True):
        centroids, found = locate_balls(video)  # (T, 6, 2), (T, 6)
        assert found[:, s["colour"]].all() and s["pos"].shape == (5, len(s["colour"]), 2)


def test_tracker_finds_each_ball_by_colour():
    env = BouncingBalls(max_balls=3)  # three balls that do not overlap (overlaps bias centroids)
    frame, info = env.reset(seed=0)
    frame = frame[None]
    centroids, found = locate_balls(frame)
    assert found[0].sum() == len(info["radius"])
    for k, c in enumerate(info["colour"]):
        assert np.linalg.norm(centroids[0, c] - info["pos"][k]) < 0.3
    shifted = np.roll(frame, 3, axis=2)  # every ball 3 px to the right
    assert np.allclose(ball_error(shifted, frame), 3.0, atol=0.3)
    assert ball_error(np.zeros_like(frame), frame)[0] > 5  # erased balls are an error, not a skip


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
