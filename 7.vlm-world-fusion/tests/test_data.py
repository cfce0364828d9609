"""Data tests: determinism per seed, walls that stop the agent, readable answers, the templates."""

import numpy as np

from data_utils import (
    ACTIONS,
    PointMassRoom,
    answer_text,
    cell_of,
    make_questions,
    make_trajectories,
    near_border,
    question_text,
)


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
    env.reset((0.30, 0.20))  # left room, far from the door
    for _ in range(3):
        env.step(ACTIONS.index("right"))
    assert env.pos[0] < 0.47 - 0.049  # stopped by the wall (x of its left face minus the radius)
    env.reset((0.30, 0.50))  # level with the door
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
