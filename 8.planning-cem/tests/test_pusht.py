"""PushT (pusht/): the oracle's physics copy, the tasks' goals are reachable, the oracle's cost, the data
cache, and train.py + validate.py --env pusht end to end. Skipped when gym-pusht is not installed."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gym_pusht") is None, reason="gym-pusht is not installed"
)
CHAPTER = Path(__file__).resolve().parents[1]


def test_the_physics_copy_reproduces_the_env_step():
    from pusht.world import Physics, PushT, body_state, scripted_action

    env, physics, rng, errors = PushT(), Physics(), np.random.default_rng(0), []
    for k in range(6):
        env.reset(seed=k)
        aim = rng.normal(0, 30, 2)
        for _ in range(5):  # scripted pushes: the agent meets the block
            a = scripted_action(env, rng, aim)
            imagined = physics.rollout(body_state(env.u), a[None])[0]  # (5,) from the real bodies
            env.step(a)
            errors.append(np.abs(imagined - env.state()).max())
    # Without contact the copy is exact; in contact pymunk's solver warm-starts from the impulses it
    # cached at the last step, which the copy does not share: measured up to 2.5 px, 0.02 px on average.
    assert np.median(errors) < 1e-6 and np.mean(errors) < 0.5 and max(errors) < 5.0, errors


def test_replaying_the_recorded_actions_reaches_the_goal():
    from pusht.plan import run_pusht
    from pusht.world import make_pusht_tasks, pusht_success

    tasks = make_pusht_tasks(4, seed=10_000)
    assert all(t["actions"].shape == (5, 2) and t["goal_frame"].shape == (64, 64, 3) for t in tasks)
    replay = run_pusht(tasks, "replay", None, [None] * 4)
    assert all(r["success"] and r["dist"] < 1e-6 for r in replay)  # the same physics, the same numbers
    assert not any(pusht_success(t["goal"], t["start"])[0] for t in tasks)  # doing nothing does not


def test_the_oracle_cost_prefers_the_recorded_actions_over_doing_nothing():
    from pusht.plan import oracle_cost
    from pusht.world import Physics, PushT, body_state, make_pusht_tasks

    tasks, env, physics = make_pusht_tasks(3, seed=10_000), PushT(), Physics()
    for t in tasks:
        env.reset(t["start"])
        cost_fn = oracle_cost(physics, body_state(env.u)[None], t["goal"][None])
        cost = cost_fn(torch.from_numpy(np.stack([t["actions"], np.zeros((5, 2))]))[None].float())  # (1, 2)
        assert cost.shape == (1, 2) and cost[0, 0] < 1.0 < cost[0, 1]  # under the success threshold vs not


def test_success_is_dino_wm_eval_state():
    from pusht.world import make_pusht_tasks, pusht_success

    goal = make_pusht_tasks(1, seed=0)[0]["goal"]
    assert pusht_success(goal, goal)[0]
    assert not pusht_success(goal, goal + np.array([0, 0, 30, 0, 0]))[0]  # the block 30 px away
    assert not pusht_success(goal, goal + np.array([0, 0, 0, 0, np.pi / 6]))[0]  # turned 30 degrees
    assert pusht_success(goal, goal + np.array([0, 0, 0, 0, 2 * np.pi]))[0]  # a full turn is no turn


def test_the_data_cache_is_a_typed_dataset_and_deterministic(tmp_path):
    from pusht.data import load_pusht_trajectories, make_pusht_trajectories

    a = load_pusht_trajectories(3, 4, seed=1, data_dir=tmp_path)  # generated and saved
    (folder,) = tmp_path.iterdir()
    assert folder.name.startswith("pusht_") and (folder / "dataset_info.json").exists()
    b = load_pusht_trajectories(3, 4, seed=1, data_dir=tmp_path)  # read back with load_from_disk
    shapes = {"frames": (3, 4, 64, 64, 3), "actions": (3, 3, 2), "proprio": (3, 4, 6), "state": (3, 4, 5)}
    for k, shape in shapes.items():
        assert b[k].shape == shape and b[k].dtype == (np.uint8 if k == "frames" else np.float32)
        assert np.array_equal(a[k], b[k])
    assert np.array_equal(make_pusht_trajectories(3, 4, seed=1)["frames"], a["frames"])


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, *args], cwd=CHAPTER, capture_output=True, text=True, timeout=120, env=env
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """An output root after `train.py --env pusht --quick` on 8 trajectories (the data cache included)."""
    out = tmp_path_factory.mktemp("pusht_run")
    train = run("train.py", "--env", "pusht", "--quick", "--n-traj", "8", "--steps", "5", "--out", str(out))
    assert train.returncode == 0, train.stderr[-2000:]
    assert (out / "checkpoints" / "world_model_pusht.pt").exists()
    assert [p.name[:6] for p in (out / "data").iterdir()] == ["pusht_"]  # the cache under --out
    return out


@pytest.mark.parametrize("planner", ["mpc-cem", "oracle"])
def test_validate_pusht_quick_end_to_end(trained, planner):
    val = run("validate.py", "--env", "pusht", "--quick", "--planner", planner, "--out", str(trained))
    assert val.returncode == 0, val.stderr[-2000:]
    report = json.loads((trained / "outputs" / f"metrics_pusht_{planner}.json").read_text())
    assert 0.0 <= report["metrics"][f"success/pusht/{planner}"] <= 1.0
    assert report["baselines"][f"success/pusht/{planner}/replay"] == 1.0
    assert (trained / "outputs" / f"pusht_{planner}.png").stat().st_size > 0
    assert "95% interval" in val.stdout


def test_a_reset_to_a_state_shows_that_state():
    """pymunk draws shapes where it last stepped them: reset(state) must refresh them, or the planner's
    first frame would show the previous state (it did, before ``cache_bb`` in PushT.reset)."""
    from pusht.world import WARMUP, PushT, scripted_action

    env, rng = PushT(), np.random.default_rng(3)
    env.reset(seed=3)
    aim = rng.normal(0, 30, 2)
    for _ in range(WARMUP):
        frame = env.step(scripted_action(env, rng, aim)).copy()  # (64, 64, 3) after a real step
    assert np.array_equal(PushT().reset(env.state()), frame)
