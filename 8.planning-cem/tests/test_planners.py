"""Planner tests: CEM finds a known optimum, gradient descent keeps to the action bounds, MPC re-plans
after each executed chunk, the oracle beats doing nothing, and a seeded evaluation is reproducible."""

import numpy as np
import pytest
import torch
from evaluate import PlanConfig, run_episodes
from planners import cem, gradient_plan, mpc, oracle_cost, random_shooting

from data_utils import PointMassRoom, distance_field, geodesic
from models import WorldModel

TARGET = torch.tensor([[0.5, -0.3], [0.2, 0.7], [-0.6, 0.1]])  # (H=3, A=2), inside the bounds


def quadratic(actions: torch.Tensor) -> torch.Tensor:
    """A known cost: (B, S, H, A) -> (B, S), minimal (zero) at TARGET."""
    return (actions - TARGET).pow(2).sum((-1, -2))


def test_cem_finds_the_optimum_of_a_quadratic_and_its_cost_falls():
    gen = torch.Generator().manual_seed(0)
    plan, history = cem(quadratic, torch.zeros(2, 3, 2), n_samples=200, n_elites=20, n_iters=8, gen=gen)
    assert plan.shape == (2, 3, 2)
    assert torch.allclose(plan, TARGET.expand(2, -1, -1), atol=0.05)
    assert history[-1].max() < 0.01 < history[0].min()  # the best cost falls over the iterations
    shooting, _ = random_shooting(quadratic, 2, 3, n_samples=1600, gen=gen)  # same budget, no refit
    assert quadratic(shooting[:, None]).min() > quadratic(plan[:, None]).max()


def test_gradient_planner_finds_the_optimum_and_respects_the_bounds():
    gen = torch.Generator().manual_seed(0)
    plan, _ = gradient_plan(quadratic, torch.zeros(1, 3, 2), n_restarts=2, n_steps=60, lr=0.1, gen=gen)
    assert torch.allclose(plan[0], TARGET, atol=0.05)
    outside = lambda a: (a - 5.0).pow(2).sum((-1, -2))  # noqa: E731  the optimum is outside [-1, 1]
    plan, _ = gradient_plan(outside, torch.zeros(1, 3, 2), n_steps=20, gen=gen)
    assert plan.abs().max() <= 1.0 and torch.allclose(plan, torch.ones_like(plan))


def test_gradient_planner_through_the_world_model_stays_in_bounds():
    model = WorldModel(16, 8, 32).requires_grad_(False)
    z0, zg = torch.randn(1, 16), torch.randn(1, 16)

    def cost(a):
        z = model.rollout(z0[:, None].expand(-1, a.shape[1], -1), a)
        return (z - zg[:, None, None]).pow(2).sum((-1, -2)) * 100  # steep: pushes actions outwards

    plan, _ = gradient_plan(cost, torch.zeros(1, 4, 2), n_steps=15, lr=1.0)
    assert plan.abs().max() <= 1.0


class CountingEnv:
    """A stand-in world that records each (B, A) action it executes."""

    def __init__(self):
        self.executed = []

    def step(self, a):
        self.executed.append(np.array(a))


def test_mpc_replans_after_each_executed_chunk_from_the_new_state():
    env, seen = CountingEnv(), []

    def make_cost(e):
        seen.append(len(e.executed))  # how many actions had been executed when this plan was made
        return quadratic

    def planner(cost_fn, mean):
        return torch.full_like(mean, 0.1 * len(seen)), []  # plan number k: every action = 0.1 k

    out = mpc(env, make_cost, planner, horizon=3, n_steps=7, execute=2, batch=2)
    assert seen == [0, 2, 4, 6] and out["replans"] == 4 and len(env.executed) == 7
    assert np.allclose([a[1, 0] for a in env.executed], [0.1, 0.1, 0.2, 0.2, 0.3, 0.3, 0.4])
    assert out["actions"].shape == (2, 7, 2)
    with pytest.raises(ValueError, match="execute"):
        mpc(env, make_cost, planner, horizon=3, n_steps=4, execute=4)


def test_oracle_goes_through_the_door_and_doing_nothing_costs_the_distance():
    pc = PlanConfig(n_steps=12)  # the default CEM: 150 samples, 15 elites, 6 iterations, horizon 5
    starts, goals = np.array([[0.25, 0.5], [0.2, 0.2]]), np.array([[0.75, 0.5], [0.2, 0.8]])
    episodes, _ = run_episodes(
        "wall", starts, goals, "oracle", pc, None, 1.0, "cpu", torch.Generator().manual_seed(0)
    )
    assert all(e["success"] for e in episodes) and len(episodes[0]["positions"]) == 13
    env = PointMassRoom("wall")
    cost = oracle_cost(env.walls, starts[:1], goals[:1])(torch.zeros(1, 1, 6, 2))
    assert cost.item() == pytest.approx(6 * 0.5)  # doing nothing: 0.5 away at each of 6 steps


def test_a_seeded_evaluation_is_reproducible_and_batching_changes_nothing():
    model = WorldModel(16, 8, 32).eval().requires_grad_(False)
    pc = PlanConfig(n_steps=4, horizon=3, samples=40, elites=5, iters=2)
    starts, goals = np.array([[0.2, 0.2], [0.8, 0.2]]), np.array([[0.8, 0.8], [0.2, 0.8]])

    def paths(seed, b=2):
        eps, _ = run_episodes("umaze", starts[:b], goals[:b], "mpc-cem", pc, model, 1.0, "cpu",
                              torch.Generator().manual_seed(seed))  # fmt: skip
        return np.stack([e["positions"] for e in eps])

    first = paths(7)
    assert np.array_equal(first, paths(7)) and not np.array_equal(first, paths(8))
    assert first.shape == (2, 5, 2)


def test_the_oracle_distance_goes_round_the_walls():
    env = PointMassRoom("wall")
    start, goal = np.array([[0.2, 0.2]]), np.array([0.8, 0.2])
    field = distance_field(env.walls, goal)
    through_door = geodesic(field, goal, start)[0]
    assert 0.75 < through_door < 0.9 and through_door > np.linalg.norm(start - goal) + 0.15
    assert geodesic(field, goal, goal[None])[0] == 0.0  # exact at the goal: no pixel-sized offset
    near = geodesic(field, goal, np.array([[0.75, 0.2]]))[0]
    assert near == pytest.approx(0.05, abs=0.01)


def test_batched_planners_give_each_task_the_plan_it_gets_alone():
    """Same noise (one stream per task), same plan: the batched path is the single-task one, B times."""
    from planners import (
        cem_one,
        gradient_plan_one,
        model_cost,
        random_shooting_one,
        task_generators,
    )

    torch.manual_seed(0)
    model = WorldModel(16, 8, 32).eval().requires_grad_(False)
    z0, zg = torch.randn(5, 16), torch.randn(5, 16)  # 5 tasks
    batched = model_cost(model, z0, zg, 1.0, distance="learned", chunk=2)  # chunks of 2, 2 and 1 tasks
    mean = torch.rand(5, 4, 2) - 0.5
    plans = {
        "cem": cem(batched, mean, n_samples=50, n_elites=5, n_iters=3, gen=task_generators(3, 5))[0],
        "random": random_shooting(batched, 5, 4, n_samples=60, gen=task_generators(3, 5))[0],
        "gd": gradient_plan(batched, mean, n_restarts=3, n_steps=5, gen=task_generators(3, 5))[0],
    }
    for i in range(5):
        one = model_cost(model, z0[i], zg[i], 1.0, distance="learned")  # (S, H, A) -> (S,)
        alone = {
            "cem": cem_one(one, mean[i], n_samples=50, n_elites=5, n_iters=3, gen=task_generators(3, 5)[i])[
                0
            ],
            "random": random_shooting_one(one, 4, n_samples=60, gen=task_generators(3, 5)[i])[0],
            "gd": gradient_plan_one(one, mean[i], n_restarts=3, n_steps=5, gen=task_generators(3, 5)[i])[0],
        }
        for name, plan in alone.items():
            assert torch.allclose(plans[name][i], plan, atol=1e-5), (name, i)
    assert not torch.allclose(plans["cem"][0], plans["cem"][1])  # different tasks, different plans


def test_the_batched_geodesic_reads_each_task_its_own_field():
    env = PointMassRoom("wall")
    goals = np.array([[0.8, 0.2], [0.2, 0.8]])
    fields = np.stack([distance_field(env.walls, g) for g in goals])  # (2, G, G)
    p = np.random.default_rng(0).uniform(0.1, 0.9, size=(2, 7, 2))  # (B, M, 2)
    together = geodesic(fields, goals, p)  # (2, 7)
    assert together.shape == (2, 7)
    for i in range(2):
        assert np.allclose(together[i], geodesic(fields[i], goals[i], p[i]))


def test_wilson_interval_matches_known_values():
    from evaluate import wilson

    low, high = wilson(50, 50)  # all 50 succeed: the interval is not [1, 1]
    assert low == pytest.approx(0.9287, abs=1e-3) and high == pytest.approx(1.0)
    low, high = wilson(194, 200)
    assert low == pytest.approx(0.9361, abs=1e-3) and high == pytest.approx(0.9864, abs=1e-3)
    assert wilson(0, 4)[0] == pytest.approx(0.0, abs=1e-12)
