"""Data tests: the rooms are valid gymnasium envs, one seed gives the same data twice (byte-identical to
the published runs'), the Hugging Face dataset cache, the batched physics, tasks (PushT's: test_pusht.py)."""

import hashlib

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import data_utils
from data_utils import PointMassRoom, load_trajectories, make_tasks, make_trajectories, step_positions

# sha1 of every array of make_trajectories(world, 3, 4, seed=0) and of make_tasks(world, 10, seed=5),
# recorded with the generator of the published runs (before the rooms became gymnasium envs). The default
# training sets (1,200 x 16 frames per room), the --quick sets and the default held-out tasks (200 per
# room) were checked the same way, array by array, when the env came in: the trained checkpoint still
# fits its data, and validate.py still plans on the same tasks.
PUBLISHED = {
    "wall": {
        "frames": "2b7e79b0ec6eaff7c333eb04b9fcd7ccd918656d",
        "actions": "036ab70e2d701f9cb0c9b2826194b1dff0597887",
        "proprio": "7e4cffbf4734d87167351a66cf140eff9f4fee2e",
        "tasks": "97adc553e3fbaa16c67745063a7602c229c81970",
    },
    "umaze": {
        "frames": "1ebcfb1531e3e9977dcf9d3c56274deb8d83c960",
        "actions": "036ab70e2d701f9cb0c9b2826194b1dff0597887",
        "proprio": "6eec2c92da78ebd7e28c28ffa412b2d9eea72609",
        "tasks": "7af03be74994aa422f65681d3b511556151419e6",
    },
}


def sha1s(d: dict) -> dict:
    return {k: hashlib.sha1(np.ascontiguousarray(v).tobytes()).hexdigest() for k, v in d.items()}


@pytest.mark.parametrize("world", ["wall", "umaze"])
def test_the_rooms_pass_gymnasiums_env_checker(world):
    check_env(PointMassRoom(world), skip_render_check=False)


def test_one_seed_gives_the_same_frames_twice():
    def episode(world, seed):
        env = PointMassRoom(world)
        frame, info = env.reset(seed=seed)
        frames, positions = [frame], [info["pos"]]
        for a in ([1.0, 0.0], [0.5, -0.5], [0.0, 1.0], [-1.0, 0.2]):
            frame, reward, terminated, truncated, info = env.step(np.array(a, dtype=np.float32))
            assert (reward, terminated, truncated) == (0.0, False, False)
            frames.append(frame)
            positions.append(info["pos"])
        return np.stack(frames), np.stack(positions)  # (5, 64, 64, 3) uint8, (5, 2)

    for world in ("wall", "umaze"):
        (a, pa), (b, pb) = episode(world, 7), episode(world, 7)
        assert a.dtype == np.uint8 and a.shape == (5, 64, 64, 3)
        assert np.array_equal(a, b) and np.array_equal(pa, pb)
        assert not np.array_equal(a, episode(world, 8)[0])


def test_the_data_and_tasks_are_byte_identical_to_the_published_runs():
    for world in ("wall", "umaze"):
        got = sha1s(make_trajectories(world, 3, 4, seed=0)) | sha1s({"tasks": make_tasks(world, 10, seed=5)})
        assert got == PUBLISHED[world], world


def test_trajectories_are_cached_as_hugging_face_datasets(tmp_path):
    first = load_trajectories("wall", 3, 4, seed=0, quiet=True, data_dir=tmp_path)
    saved = list(tmp_path.iterdir())
    assert [p.name.split("_")[0] for p in saved] == ["wall"]  # one folder, no temporary one left over
    assert (saved[0] / "dataset_info.json").exists()  # save_to_disk's layout
    assert not list(tmp_path.rglob("*.npz"))
    again = load_trajectories("wall", 3, 4, seed=0, quiet=True, data_dir=tmp_path)  # from the Arrow files
    for k, v in first.items():
        assert again[k].dtype == v.dtype and np.array_equal(again[k], v), k
    assert sha1s(again) == {k: v for k, v in PUBLISHED["wall"].items() if k != "tasks"}
    import datasets

    ds = datasets.load_from_disk(str(saved[0]))  # as a learner would open it
    assert len(ds) == 3 and ds.features["frames"].dtype == "uint8"
    assert data_utils.column(ds, "frames").dtype == np.uint8  # not widened to int64


def test_trajectories_are_deterministic_per_seed():
    for world in ("wall", "umaze"):
        a, b = make_trajectories(world, 3, 5, seed=1), make_trajectories(world, 3, 5, seed=1)
        assert a["frames"].shape == (3, 5, 64, 64, 3) and a["frames"].dtype == np.uint8
        assert a["actions"].shape == (3, 4, 2) and a["proprio"].shape == (3, 5, 2)
        for key in ("frames", "actions", "proprio"):
            assert np.array_equal(a[key], b[key])
        assert not np.array_equal(a["frames"], make_trajectories(world, 3, 5, seed=2)["frames"])


def test_the_wall_blocks_and_the_door_lets_through():
    env = PointMassRoom("wall")
    env.reset(options={"pos": [0.3, 0.2]})  # left room, level with the wall
    for _ in range(4):
        _, _, _, _, info = env.step([1.0, 0.0])
    assert info["pos"][0] < 0.47 - 0.05 + 1e-9  # stopped by the wall
    env.reset(options={"pos": [0.3, 0.5]})  # level with the door
    for _ in range(4):
        _, _, _, _, info = env.step([1.0, 0.0])
    assert info["pos"][0] > 0.6  # through the door


def test_batched_physics_matches_the_single_environment():
    env, rng = PointMassRoom("umaze"), np.random.default_rng(0)
    env.reset(seed=3)
    starts = np.array([env.sample_free() for _ in range(16)])
    acts = rng.uniform(-1, 1, (16, 2))
    batch = step_positions(env.walls, starts, acts)
    for s, a, b in zip(starts, acts, batch, strict=True):
        env.reset(options={"pos": s})
        _, _, _, _, info = env.step(a)
        assert np.allclose(info["pos"], b)


def test_tasks_are_seeded_and_far_enough_apart():
    a, b = make_tasks("wall", 10, seed=5), make_tasks("wall", 10, seed=5)
    assert a.shape == (10, 2, 2) and np.array_equal(a, b)
    assert (np.linalg.norm(a[:, 0] - a[:, 1], axis=1) >= 0.3).all()
    assert not np.array_equal(a, make_tasks("wall", 10, seed=6))


def test_bad_actions_and_worlds_are_refused():
    with pytest.raises(ValueError, match="unknown environment"):
        PointMassRoom("maze")
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        PointMassRoom("wall").step([2.0, 0.0])


def test_experience_distances_go_round_the_wall():
    from experience_graph import experience_distances, pair_targets

    from data_utils import distance_field, geodesic

    d = make_trajectories("wall", 300, 16, seed=0)
    table = experience_distances(d["proprio"], grid=16)
    assert table.shape == (256, 256) and np.all(np.diag(table) == 0)
    left, right = np.array([[0.3, 0.15]]), np.array([[0.7, 0.15]])  # level with each other, wall between
    through_door = pair_targets(table, left, right, grid=16)[0]
    assert through_door > 0.4 + 0.2  # the straight line is 0.4; the way through the door is ~0.8
    walls = PointMassRoom("wall").walls
    true = geodesic(distance_field(walls, right[0]), right[0], left)[0]
    assert abs(through_door - true) < 0.15 * true  # close to the true shortest path (no map was used)
    near = pair_targets(table, left, left + [[0.01, 0.0]], grid=16)[0]
    assert np.isclose(near, 0.01)  # inside one cell: the straight line


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
