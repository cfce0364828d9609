"""Data tests: the room is a valid gymnasium env, one seed gives the same data twice (byte-identical to
the published runs'), the Hugging Face dataset cache, walls that stop the agent, readable answers, the
templates."""

import hashlib

import numpy as np
from gymnasium.utils.env_checker import check_env

import data_utils
from data_utils import (
    ACTIONS,
    PointMassRoom,
    answer_text,
    cell_of,
    load_questions,
    load_trajectories,
    make_questions,
    make_trajectories,
    near_border,
    question_text,
)

# sha1 of every array of make_trajectories(3, 4, seed=0) and make_questions(5, 3, seed=0), recorded with
# the generator of the published runs (before the room became a gymnasium env). The default training and
# held-out sets were checked the same way, array by array, when the env came in.
PUBLISHED = {
    "traj": {
        "frames": "a975fc86fa48928f971d726ea175f75157f3bc38",
        "actions": "af294c6825e4da5b02ba44887bc783e5d299e908",
        "proprio": "cb345d791ecde9925c1274b0df641ba45f9c2ada",
    },
    "qa": {
        "frames": "452aab1fa6070a5fd8b51e3d6653ab78cf92a416",
        "actions": "f10a1ce109c1cffc70b67cb62d7be9a954c9d1f7",
        "start": "481e67b93c1c7c569484ce622ab31dec732c167d",
        "end": "006be4c725b4449e40d8ef0a6f62f1a4a435e42e",
        "present": "ba4ed7dc696c34666ac2ca8016ac434a387df57d",
        "future": "11364f92b69902cedecf3382a3ff12d616c04b94",
        "blocked": "082736e67e56018e6391be1fc06089fb207edc54",
    },
}


def sha1s(d: dict) -> dict:
    return {k: hashlib.sha1(np.ascontiguousarray(v).tobytes()).hexdigest() for k, v in d.items()}


def test_the_room_passes_gymnasiums_env_checker():
    check_env(PointMassRoom(), skip_render_check=False)


def test_one_seed_gives_the_same_frames_twice():
    def episode(seed):
        env = PointMassRoom()
        frames = [env.reset(seed=seed)[0]]
        frames += [env.step(a)[0] for a in (2, 2, 4, 1, 3, 0)]
        return np.stack(frames)  # (7, 32, 32, 3) uint8

    a, b = episode(7), episode(7)
    assert a.dtype == np.uint8 and a.shape == (7, 32, 32, 3) and np.array_equal(a, b)
    assert not np.array_equal(a, episode(8))


def test_the_data_is_byte_identical_to_the_published_runs():
    assert sha1s(make_trajectories(3, 4, seed=0)) == PUBLISHED["traj"]
    assert sha1s(make_questions(5, 3, seed=0)) == PUBLISHED["qa"]


def test_both_datasets_are_cached_as_hugging_face_datasets(tmp_path):
    first = {"traj": load_trajectories(3, 4, seed=0, quiet=True, data_dir=tmp_path)}
    first["qa"] = load_questions(5, 3, seed=0, quiet=True, data_dir=tmp_path)
    saved = sorted(tmp_path.iterdir())
    assert [p.name.split("_")[0] for p in saved] == ["qa", "traj"]
    assert all((p / "dataset_info.json").exists() for p in saved)  # save_to_disk's layout, no .npz
    assert not list(tmp_path.rglob("*.npz"))
    again = {  # from the Arrow files: the same arrays, in the dtypes they were made in
        "traj": load_trajectories(3, 4, seed=0, quiet=True, data_dir=tmp_path),
        "qa": load_questions(5, 3, seed=0, quiet=True, data_dir=tmp_path),
    }
    for name in ("traj", "qa"):
        assert set(again[name]) == set(first[name])
        for k, v in first[name].items():
            assert again[name][k].dtype == v.dtype and np.array_equal(again[name][k], v), (name, k)
        assert sha1s(again[name]) == PUBLISHED[name]
    import datasets

    ds = datasets.load_from_disk(str(saved[1]))  # the trajectories, as a learner would open them
    assert ds.features["frames"].dtype == "uint8" and len(ds) == 3
    assert data_utils.column(ds, "frames").dtype == np.uint8  # not widened to int64


def test_trajectories_and_questions_are_deterministic_per_seed():
    a, b, c = (
        make_trajectories(3, 5, seed=1),
        make_trajectories(3, 5, seed=1),
        make_trajectories(3, 5, seed=2),
    )
    assert a["frames"].shape == (3, 5, 32, 32, 3) and a["frames"].dtype == np.uint8
    for key in ("frames", "actions", "proprio"):
        assert np.array_equal(a[key], b[key])
    assert not np.array_equal(a["frames"], c["frames"])
    q1, q2, q3 = make_questions(20, 3, seed=5), make_questions(20, 3, seed=5), make_questions(20, 3, seed=6)
    assert all(np.array_equal(q1[k], q2[k]) for k in q1)
    assert not np.array_equal(q1["start"], q3["start"])


def test_walls_stop_the_agent_and_the_door_lets_it_through():
    env = PointMassRoom()
    env.reset(options={"pos": (0.30, 0.20)})  # left room, far from the door
    for _ in range(3):
        env.step(ACTIONS.index("right"))
    assert env.pos[0] < 0.47 - 0.049  # stopped by the wall (x of its left face minus the radius)
    env.reset(options={"pos": (0.30, 0.50)})  # level with the door
    for _ in range(3):
        env.step(ACTIONS.index("right"))
    assert env.pos[0] > 0.53 + 0.05  # through the door into the right room
    assert cell_of(env.pos)[1] >= 2


def test_questions_have_readable_answers_and_some_are_wall_stopped():
    q = make_questions(200, 3, seed=0)
    assert not near_border(q["start"]).any() and not near_border(q["end"]).any()
    assert np.array_equal(q["present"], cell_of(q["start"])) and np.array_equal(
        q["future"], cell_of(q["end"])
    )
    assert (q["actions"] > 0).all()  # future questions never say 'stay'
    assert 0.2 < q["blocked"].mean() < 0.95
    assert 0.1 < (q["present"] == q["future"]).all(1).mean() < 0.5  # the future is usually elsewhere


def test_templates():
    assert question_text("present") == "where is the agent ?"
    assert question_text("future", [2, 2, 3]) == "where will the agent be after right right up ?"
    assert answer_text((1, 3)) == "row1 col3"
    assert tuple(cell_of(np.array([0.9, 0.1]))) == (0, 3)  # x = 0.9 -> column 3, y = 0.1 -> row 0


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
