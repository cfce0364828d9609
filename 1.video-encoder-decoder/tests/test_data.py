"""Simulator and dataset tests: every world is a valid gymnasium env, deterministic per seed; the data
is byte-identical to the frames the README's numbers were measured on; the Hugging Face dataset cache;
world rules; the object locator."""

import hashlib

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import data_utils
from data_utils import (
    WORLDS,
    BouncingBalls,
    PointMassRoom,
    ToroidalDot,
    as_arrays,
    centroid_error,
    load_frames,
    locate_object,
    make_env,
    make_frames,
    world_frames,
)


def sha1(a: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest()


@pytest.mark.parametrize(
    "env",
    [
        ToroidalDot(),
        ToroidalDot.small(two_d=True),
        BouncingBalls(),
        PointMassRoom("wall"),
        PointMassRoom("umaze"),
    ],
    ids=["dot224", "dot64-2d", "balls", "wall", "umaze"],
)
@pytest.mark.filterwarnings("ignore:.*alternative render modes")  # needs gymnasium.make's registry
def test_every_world_passes_gymnasiums_env_checker(env):
    check_env(env, skip_render_check=False)
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.uint8 and np.array_equal(obs, env.render())  # the observation is the frame


@pytest.mark.parametrize("world", WORLDS)
def test_one_seed_gives_the_same_frames_twice(world):
    def episode(seed):  # (6, 64, 64, 3): a reset and five random steps
        env = make_env(world)
        env.action_space.seed(seed)  # the sampled actions repeat too
        frames = [env.reset(seed=seed)[0]]
        frames += [env.step(env.action_space.sample())[0] for _ in range(5)]
        return np.stack(frames)

    assert np.array_equal(episode(7), episode(7))
    assert not np.array_equal(episode(7), episode(8))


@pytest.mark.parametrize("world", WORLDS)
def test_frames_are_deterministic_per_seed(world):
    a, b = world_frames(world, 30, seed=5), world_frames(world, 30, seed=5)
    assert a.shape == (30, 64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, world_frames(world, 30, seed=6))


def test_the_data_is_byte_identical_to_the_frames_the_readme_measured():
    # sha1 of what the code produced before the worlds became gymnasium envs (the .npz version);
    # the default 18,000 training frames were checked the same way once (sha1 c71e5271...)
    want = {
        "dot": "11c7dccb303e0be2aff8da42f28ad84dbf8f1463",
        "balls": "9ab97af72d8fd459e904278a12805613c3982617",
        "wall": "920736a4063be3b25a6f390ee73b34f95ff56da0",
    }
    for world, digest in want.items():
        assert sha1(world_frames(world, 30, seed=5)) == digest, world
    mix = make_frames(10, seed=0)
    assert sha1(mix["frames"]) == "592481e46727d509e0c37cade71df32c75840fda"
    assert sha1(mix["world"]) == "00ccba3f3d0b7ee2b2148b48c8dbedf9e3867b9f"


def test_load_frames_caches_a_hugging_face_dataset(tmp_path):
    first = load_frames(4, seed=123, data_dir=tmp_path, quiet=True)
    saved = [p for p in tmp_path.iterdir()]
    assert len(saved) == 1 and (saved[0] / "dataset_info.json").exists()  # save_to_disk's layout
    assert not list(tmp_path.rglob("*.npz"))
    assert first.features["frames"].dtype == "uint8" and first.features["frames"].shape == (64, 64, 3)
    again = as_arrays(load_frames(4, seed=123, data_dir=tmp_path, quiet=True))  # from the Arrow files
    first = as_arrays(first)
    assert again["frames"].dtype == np.uint8 and np.array_equal(first["frames"], again["frames"])
    assert np.array_equal(again["frames"], make_frames(4, seed=123)["frames"])  # the cache changes nothing
    assert list(first["world"]) == [0] * 4 + [1] * 4 + [2] * 4
    other = as_arrays(load_frames(4, seed=124, data_dir=tmp_path, quiet=True))
    assert not np.array_equal(first["frames"], other["frames"])


def test_toroidal_dot_original_rules():
    env = ToroidalDot()  # 224 px, radius 2, action 1 = 7 px right, x wraps
    env.reset(seed=0)
    env.pos = np.array([220, 50])
    frame, reward, terminated, truncated, info = env.step(1)
    assert frame.shape == (224, 224, 3) and tuple(env.pos) == (3, 50)  # 220 + 7 wraps to 3
    assert tuple(info["pos"]) == (3, 50) and reward == 0.0 and not terminated and not truncated
    env.step(0)
    assert tuple(env.pos) == (3, 50)
    with pytest.raises(ValueError, match="action"):
        env.step(2)
    env2 = ToroidalDot.small(two_d=True)
    env2.reset(seed=0)
    env2.pos = np.array([10, 0])
    env2.step(3)  # up wraps y
    assert tuple(env2.pos) == (10, 62)


def test_point_mass_cannot_cross_the_wall_but_passes_the_door():
    env = PointMassRoom("wall")
    env.reset(seed=0)
    env.pos = np.array([0.3, 0.2])
    for _ in range(20):
        env.step([1.0, 0.0])
    assert env.pos[0] < 0.47  # stopped by the dividing wall
    env.pos = np.array([0.3, 0.5])  # level with the door
    for _ in range(20):
        _, _, _, _, info = env.step([1.0, 0.0])
    assert env.pos[0] > 0.53 and np.allclose(info["proprio"], env.pos)  # proprioception: its own (x, y)
    with pytest.raises(ValueError, match="action"):
        env.step([2.0, 0.0])


def test_balls_stay_inside_and_keep_their_speed():
    env = BouncingBalls()
    env.reset(seed=3)
    speed = np.linalg.norm(env.vel, axis=1)
    for _ in range(200):
        env.step(0)  # passive: the only action
    assert np.all(env.pos >= env.radius[:, None] - 1e-9) and np.all(
        env.pos <= 63 - env.radius[:, None] + 1e-9
    )
    assert np.allclose(np.linalg.norm(env.vel, axis=1), speed)
    with pytest.raises(ValueError, match="passive"):
        env.step(1)


def test_locator_finds_a_subpixel_dot_and_flags_a_vanished_one():
    env = ToroidalDot.small()
    env.pos = np.array([0, 30])  # on the left edge: half of the dot shows on the right
    frame = env.render()[None]
    centroid, found = locate_object(frame, "dot")
    torus_offset = (centroid[0] - [0, 30] + 32) % 64 - 32  # 63.99 and 0.01 are both next to 0
    assert found[0] and np.abs(torus_offset).max() < 0.05
    err, vanished = centroid_error(np.zeros((1, 64, 64, 3), np.float32), frame, "dot")
    assert vanished[0] and err[0] > 20  # an erased dot is an error, not a skipped frame


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
