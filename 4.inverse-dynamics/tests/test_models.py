"""Model tests: shapes, learning on a fixed batch, the LAM's bottleneck, determinism, bad inputs."""

from types import SimpleNamespace

import numpy as np
import pytest
import stages
import torch
import torch.nn.functional as F

from models import (
    ConvDynamics,
    InverseDynamics,
    LatentActionModel,
    OverlayReader,
    StateDynamics,
    VectorQuantizer,
    dream,
    perplexity,
    weighted_mse,
)
from models.dynamics import advect


def dots(b: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch of dot pairs: frame_t, frame_t+1 (B, 3, 64, 64) floats and the actions (B,)."""
    from data_utils import make_trajectories

    d = make_trajectories("dot", b, 2, seed=seed)
    f = stages.to_tensor(d["frames"]).float() / 255
    return f[:, 0], f[:, 1], torch.from_numpy(d["actions"][:, 0])


def points(n: int, length: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Point-mass transitions: positions (B, 2) px, pushes (B, 2), next positions (B, 2), B = n*(length-1)."""
    from data_utils import make_trajectories

    d = make_trajectories("wall", n, length, seed=seed)
    p, a = torch.from_numpy(d["positions"]), torch.from_numpy(d["actions"])
    return p[:, :-1].reshape(-1, 2), a.reshape(-1, 2), p[:, 1:].reshape(-1, 2)


def test_shapes():
    x0, x1, a = dots(4)
    assert InverseDynamics("discrete")(x0, x1).shape == (4, 5)
    cont = InverseDynamics("continuous")(x0, x1)
    assert cont.shape == (4, 2) and cont.abs().max() <= 1
    assert OverlayReader()(x0).shape == (4, 5)
    for q in ("fsq", "vq"):
        lam = LatentActionModel(q)
        out = lam(x0, x1)
        assert out["pred"].shape == (4, 3, 64, 64) and out["index"].shape == (4,)
        assert out["index"].max() < lam.n_codes and lam.n_codes == (9 if q == "fsq" else 8)
    dyn = StateDynamics(2)
    assert dyn(torch.rand(4, 2) * 64, torch.rand(4, 2)).shape == (4, 2)
    assert dream(dyn, torch.rand(4, 2) * 64, torch.zeros(4, 6, 2)).shape == (4, 6, 2)
    assert StateDynamics(0)(torch.rand(4, 2), torch.zeros(4, 0)).shape == (4, 2)  # told no action


def test_advection_with_a_delta_kernel_is_an_exact_shift_and_kernels_sum_to_one():
    x = torch.rand(2, 3, 64, 64)
    kernel = torch.zeros(2, 7, 7)
    kernel[0, 3, 5] = 1  # take the pixel 2 to the right: the image moves 2 px left
    kernel[1, 1, 3] = 1  # take the pixel 2 above: the image moves 2 px down
    out = advect(x, kernel)
    assert torch.allclose(out[0], torch.roll(x[0], -2, dims=2), atol=1e-6)
    assert torch.allclose(out[1], torch.roll(x[1], 2, dims=1), atol=1e-6)
    k = ConvDynamics(5, depth=0).kernels(F.one_hot(torch.arange(5), 5).float())
    assert torch.allclose(k.sum((1, 2)), torch.ones(5)) and k.min() >= 0


def fixed_batch_losses(model, loss_fn, steps=40, lr=3e-3) -> list[float]:
    """Train ``model`` on one fixed batch; the loss after each step."""
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_losses_fall_on_a_fixed_batch():
    torch.manual_seed(0)
    x0, x1, a = dots(16)
    idm = InverseDynamics("discrete")
    losses = fixed_batch_losses(idm, lambda: F.cross_entropy(idm(x0, x1), a), steps=60, lr=1e-2)
    assert losses[-1] < 0.5 * losses[0], losses[::10]
    pos, acts, nxt = points(64)
    dyn = StateDynamics(2)
    losses = fixed_batch_losses(dyn, lambda: (dyn(pos, acts) - nxt).pow(2).sum(1).mean(), steps=100)
    assert losses[-1] < 0.2 * losses[0], losses[::10]
    lam = LatentActionModel("fsq")
    losses = fixed_batch_losses(lam, lambda: weighted_mse(lam(x0, x1)["pred"], x1, 20.0))
    assert losses[-1] < 0.7 * losses[0], losses[::10]


@pytest.mark.parametrize("quantizer", ["fsq", "vq"])
def test_the_lam_decoder_sees_frame_t_plus_1_only_through_the_code(quantizer):
    """One frame_t and 64 different 'next frames': pairs that get the same code get the very same
    prediction (it is a function of frame_t and the code alone), and different codes give different
    predictions (the code is really used)."""
    torch.manual_seed(0)
    lam = LatentActionModel(quantizer)
    for layer in (lam.to_code, lam.decoder.to_kernel[-1], lam.decoder.out):  # zero at init: wake them up
        torch.nn.init.normal_(layer.weight, std=0.3)
    lam.eval()
    x0 = dots(1)[0].expand(64, -1, -1, -1)
    x1 = torch.rand(64, 3, 64, 64)  # arbitrary "next frames", full of information
    with torch.no_grad():
        out = lam(x0, x1)
        again = lam.decode(x0, lam.code_of_index(out["index"]))  # decoding the code alone
    preds, idx = out["pred"].flatten(1), out["index"]
    codes = idx.unique()
    assert 2 <= len(codes) <= lam.n_codes  # the test only means something if the codes differ
    for k in codes:
        same = preds[idx == k]
        assert torch.allclose(same, same[:1].expand_as(same), atol=1e-4)
    firsts = torch.stack([preds[idx == k][0] for k in codes])  # (codes, 3*64*64)
    assert (firsts[0] - firsts[1]).abs().max() > 1e-3
    assert torch.allclose(again, out["pred"], atol=1e-4)


def test_vq_is_nearest_neighbour_with_a_straight_through_gradient():
    vq = VectorQuantizer(4, 2)
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor([[0.0, 0], [1, 0], [0, 1], [-1, -1]]))
    z = torch.tensor([[0.9, 0.1], [-0.8, -1.2]], requires_grad=True)
    zq, idx, loss = vq(z)
    assert idx.tolist() == [1, 3] and torch.allclose(zq, vq.codebook[idx])
    zq.sum().backward()
    assert torch.allclose(z.grad, torch.ones_like(z))  # straight through
    assert loss.item() > 0


def test_perplexity_and_code_naming():
    assert perplexity(torch.zeros(100, dtype=torch.long), 8) == pytest.approx(1.0)  # collapse
    assert perplexity(torch.arange(8).repeat(10), 8) == pytest.approx(8.0)
    codes, acts = torch.tensor([0, 0, 1, 2, 2, 2]), torch.tensor([3, 3, 1, 4, 4, 0])
    mapping = stages.map_codes(codes, acts, n_codes=4)
    assert mapping[:3].tolist() == [3, 1, 4] and mapping[3] == 3  # code 3 unseen: most common action (3 or 4)


def test_idm_pseudo_labelling_is_deterministic_for_a_seed():
    from data_utils import make_trajectories

    d = make_trajectories("dot", 6, 4, seed=7)
    frames, actions = stages.to_tensor(d["frames"]), torch.from_numpy(d["actions"])
    cfg = SimpleNamespace(idm_steps=5, batch_size=8, lr=3e-3, seed=3)
    runs = []
    for seed in (3, 3, 4):
        cfg.seed = seed
        idm, _ = stages.train_idm("discrete", frames, actions, np.array([0, 1]), cfg, "cpu")
        runs.append((idm, stages.pseudo_label(idm, frames, "cpu")))
    (a, la), (b, lb), (c, _) = runs
    assert la.shape == (6, 3) and la.dtype == torch.int64
    assert torch.equal(la, lb) and torch.equal(la, stages.pseudo_label(a, frames, "cpu"))
    assert all(
        torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )
    assert not all(
        torch.equal(p, q) for p, q in zip(a.state_dict().values(), c.state_dict().values(), strict=True)
    )


def test_bad_inputs_are_value_errors_naming_the_shape():
    x0, x1, a = dots(2)
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 64\)"):
        InverseDynamics()(x0[:, :, :32, :32], x1[:, :, :32, :32])
    with pytest.raises(ValueError, match="float tensor"):
        InverseDynamics()((x0 * 255).to(torch.uint8), x1)
    with pytest.raises(ValueError, match="batch sizes differ"):
        LatentActionModel()(x0, x1[:1])
    with pytest.raises(ValueError, match=r"\(B, 2\) in pixels"):
        StateDynamics(2)(torch.zeros(2, 3), torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"\(B, A\) = \(2, 2\)"):
        StateDynamics(2)(torch.zeros(2, 2), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="quantizer"):
        LatentActionModel("kmeans")


def test_continuous_naming_and_snapping():
    codes = torch.tensor([0, 0, 2])
    acts = torch.tensor([[1.0, 0.0], [0.5, 0.0], [0.0, -1.0]])
    names = stages.name_codes(codes, acts, n_codes=3)
    assert torch.allclose(names, torch.tensor([[0.75, 0.0], [0.5, -1 / 3], [0.0, -1.0]]))  # 1 unseen: mean
    snapped = stages.snap(torch.tensor([[0.9, 0.1], [0.1, -0.8]]), names)
    assert torch.allclose(snapped, torch.tensor([[0.75, 0.0], [0.0, -1.0]]))


def test_the_pay_off_model_uses_its_labels():
    """On a small point-mass set, the dynamics model told the true pushes predicts the held-out next
    position better than the one told no action, and better than the one told pushes with half of them
    replaced by random ones: its error depends on the labels' quality, which is what the pay-off measures."""
    from data_utils import make_trajectories

    d = make_trajectories("wall", 60, 6, seed=1)
    test = points(100, seed=2)
    cfg = SimpleNamespace(dyn_steps=400, dyn_batch=128, lr=3e-3, seed=0)
    acts = torch.from_numpy(d["actions"])  # (60, 5, 2)
    wrong = torch.rand(acts.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    half = torch.where(torch.rand(acts.shape[:2] + (1,)) < 0.5, wrong, acts)
    errors = {}
    for name, a in (("true", acts), ("half_wrong", half), ("none", acts[..., :0])):
        model, _ = stages.train_state_dynamics(d["positions"], a, np.arange(60), cfg, "cpu", name)
        with torch.no_grad():
            pred = model(test[0], test[1][:, : a.shape[-1]])
        errors[name] = (pred - test[2]).norm(dim=1).mean().item()
    assert errors["true"] < 0.7 * errors["half_wrong"] < 0.7 * errors["none"], errors


def test_a_mirrored_point_mass_pair_is_one_the_simulator_makes():
    """stages.mirror flips each pair's frames left-right / up-down and negates dx / dy with them; and such
    a flipped pair is exactly what the simulator shows from the mirrored start under the mirrored push,
    for a free move and for a push into the dividing wall (the room is symmetric): the flips are free data.
    """
    from data_utils import make_env

    env = make_env("wall")

    def pair(x, y, dx, dy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Frames (64, 64, 3) before and after the push (dx, dy) from (x, y) px, and the move in px."""
        f0, info0 = env.reset(options={"pos": (x, y)})
        f1, _, _, _, info1 = env.step(np.array([dx, dy]))
        return f0, f1, info1["pos"] - info0["pos"]

    for x, y, dx, dy in ((20.0, 30.0, 0.8, -0.6), (25.5, 10.0, 1.0, 0.3)):  # free; into the dividing wall
        f0, f1, move = pair(x, y, dx, dy)
        for axis, (mx, my, mdx, mdy) in enumerate(((63 - x, y, -dx, dy), (x, 63 - y, dx, -dy))):
            g0, g1, mirrored_move = pair(mx, my, mdx, mdy)
            for f, g in ((f0, g0), (f1, g1)):  # width is the frame's axis 1, height its axis 0
                assert np.abs(np.flip(f, 1 - axis).astype(int) - g).max() <= 1
            assert mirrored_move[axis] == pytest.approx(-move[axis], abs=1e-4)
        if x == 25.5:
            assert abs(move[0]) < 0.01 < abs(move[1])  # the wall did block the push along x

    f0, f1, _ = pair(20.0, 30.0, 0.8, -0.6)
    x0 = stages.to_tensor(np.stack([f0] * 64)).float() / 255  # (64, 3, 64, 64)
    x1 = stages.to_tensor(np.stack([f1] * 64)).float() / 255
    push = torch.tensor([[0.8, -0.6]]).repeat(64, 1)
    m0, m1, m_push = stages.mirror(x0, x1, push, np.random.default_rng(0))
    assert torch.equal(push, torch.tensor([[0.8, -0.6]]).repeat(64, 1))  # the input is not changed
    sign = (m_push / push).round()  # (64, 2): -1 where flipped
    assert set(map(tuple, sign.tolist())) == {(1, 1), (-1, 1), (1, -1), (-1, -1)}  # every combination
    for i, (sx, sy) in enumerate(sign.tolist()):
        dims = [d for d, s in ((-1, sx), (-2, sy)) if s < 0]
        want0, want1 = (x[i].flip(dims) if dims else x[i] for x in (x0, x1))
        assert torch.equal(m0[i], want0) and torch.equal(m1[i], want1)
