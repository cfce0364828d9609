"""Model tests: shapes, a loss that falls on a fixed batch, the objective, bad input shapes."""

import pytest
import torch
from evaluate import to_tensor
from planners import model_cost

from data_utils import make_trajectories
from models import WorldModel
from utils import UserError


def batch(n: int = 8, t: int = 4, seed: int = 0):
    """A fixed batch of wall windows: frames (B, T, 3, 64, 64), actions (B, T-1, 2), proprio (B, T, 2)."""
    d = make_trajectories("wall", n, t, seed=seed)
    frames = torch.from_numpy(d["frames"]).permute(0, 1, 4, 2, 3).float() / 255
    return frames, torch.from_numpy(d["actions"]), torch.from_numpy(d["proprio"])


def test_shapes():
    model = WorldModel(latent_dim=32, ch=8, hidden=64)
    frames, actions, _ = batch()
    z = model.encode(frames[:, 0])
    assert z.shape == (8, 32) and model.position(z).shape == (8, 2)
    assert model.rollout(z, actions).shape == (8, 3, 32)
    assert model.rollout(z[:, None].expand(-1, 5, -1), torch.zeros(8, 5, 6, 2)).shape == (8, 5, 6, 32)


def test_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    model = WorldModel(latent_dim=32, ch=8, hidden=64)
    frames, actions, proprio = batch()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    first = model.loss(frames, actions, proprio)[0].item()
    for _ in range(60):
        loss, _ = model.loss(frames, actions, proprio)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first


def test_distance_head_shapes_and_its_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    model = WorldModel(latent_dim=32, ch=8, hidden=64)
    frames, actions, proprio = batch()
    z = model.encode(frames[:, 0])  # (8, 32)
    assert model.distance(z, z.flip(0)).shape == (8,) and model.distance(z, z).min() >= 0
    assert model.distance(z[:, None].expand(-1, 5, -1), z[:, None]).shape == (8, 5)  # broadcasts the goal
    n = frames.shape[0] * frames.shape[1]  # the B*T frames the pairs index
    i_from, i_to = torch.arange(n), torch.arange(n).roll(1)
    target = (proprio.flatten(0, 1)[i_from] - proprio.flatten(0, 1)[i_to]).norm(dim=-1)  # (M,)
    opt = torch.optim.Adam(model.distance_head.parameters(), lr=3e-3)
    first = model.loss(frames, actions, proprio, (i_from, i_to, target))[1]["distance"]
    for _ in range(80):
        loss, parts = model.loss(frames, actions, proprio, (i_from, i_to, target))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert parts["distance"] < 0.3 * first


def test_objective_is_summed_over_the_horizon_and_zero_at_the_goal():
    model = WorldModel(latent_dim=16, ch=8, hidden=32).requires_grad_(False)
    model.predictor[-1].weight.zero_()  # a model in which nothing moves: z stays z0
    model.predictor[-1].bias.zero_()
    frames, _, _ = batch(2)
    z0 = model.encode(frames[:, 0])
    at_goal = model_cost(model, z0, z0, latent_scale=1.0)(torch.zeros(2, 3, 5, 2))
    assert at_goal.shape == (2, 3) and at_goal.abs().max() < 1e-3
    cost = model_cost(model, z0, z0.flip(0), latent_scale=1.0)
    assert torch.allclose(cost(torch.zeros(2, 1, 4, 2)), 2 * cost(torch.zeros(2, 1, 2, 2)), rtol=1e-4)
    learned = model_cost(model, z0, z0.flip(0), latent_scale=1.0, distance="learned")
    assert (learned(torch.zeros(2, 1, 2, 2)) >= cost(torch.zeros(2, 1, 2, 2)) - 1e-5).all()  # never shorter
    with pytest.raises(ValueError, match="distance"):
        model_cost(model, z0, z0, latent_scale=1.0, distance="manhattan")


def test_wrong_shapes_are_clear_errors():
    model = WorldModel(latent_dim=16, ch=8, hidden=32)
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 64\)"):
        model.encode(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match="actions must be"):
        model.rollout(torch.zeros(2, 16), torch.zeros(2, 5, 3))
    with pytest.raises(UserError, match=r"\(64, 64, 3\)"):
        to_tensor(torch.zeros(96, 96, 3, dtype=torch.uint8).numpy(), "cpu")
