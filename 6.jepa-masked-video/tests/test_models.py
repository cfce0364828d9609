"""Model tests: shapes, the context encoder's blindness to masked tokens, the frozen target, learning."""

import numpy as np
import pytest
import torch
from jepa import ema_update, feature_spread, jepa_loss, make_target, momentum_at

from models import (
    ACPredictor,
    AttentiveProbe,
    MaskedPredictor,
    VideoEncoder,
    ac_losses,
    block_causal,
    cem,
    multiblock_mask,
    sample_masks,
)

torch.set_num_threads(1)  # small tensors: one thread is fastest, and the CI machine is shared


def small():
    """A tiny encoder and predictor (fast on one thread)."""
    torch.manual_seed(0)
    return VideoEncoder(dim=48, depth=1, heads=4), MaskedPredictor(enc_dim=48, dim=24, depth=1, heads=4)


def test_shapes():
    enc, pred = small()
    x = torch.rand(2, 8, 3, 64, 64)
    assert enc(x).shape == (2, 4 * 4 * 4, 48)  # 2-frame x 16-px tubelets: a (4, 4, 4) grid
    keep, masked = sample_masks(enc.grid(8), 2, np.random.default_rng(0))
    assert keep.shape[1] + masked.shape[1] == 64
    assert enc(x, keep).shape == (2, keep.shape[1], 48)
    assert pred(enc(x, keep), keep, masked).shape == (2, masked.shape[1], 48)
    assert enc.encode_frames(torch.rand(2, 3, 3, 64, 64)).shape == (2, 3, 16, 48)
    assert AttentiveProbe(48, 4)(torch.rand(5, 64, 48)).shape == (5, 4)
    ac = ACPredictor(enc_dim=48, n_patches=16, dim=32, depth=1, heads=4)
    z, s = ac(torch.rand(2, 5, 16, 48), torch.rand(2, 5, 2), torch.rand(2, 5, 4))
    assert z.shape == (2, 5, 16, 48) and s.shape == (2, 5, 4)
    for window in (None, 1):
        zr, sr = ac.rollout(torch.rand(3, 16, 48), torch.rand(3, 4), torch.rand(3, 4, 2), window)
        assert zr.shape == (3, 4, 16, 48) and sr.shape == (3, 4, 4)


def test_bad_inputs_name_the_expected_shape():
    enc, _ = small()
    with pytest.raises(ValueError, match="even T"):
        enc(torch.rand(1, 3, 3, 64, 64))
    with pytest.raises(ValueError, match="64"):
        enc(torch.rand(1, 8, 3, 32, 32))
    with pytest.raises(ValueError, match="actions"):
        ACPredictor(enc_dim=48, n_patches=16, dim=32, depth=1)(
            torch.rand(1, 2, 16, 48), torch.rand(1, 2, 3), torch.rand(1, 2, 4)
        )


def test_masks_are_multiblock_span_all_time_and_hide_most_tokens():
    rng = np.random.default_rng(0)
    ratios = []
    for _ in range(50):
        mask = multiblock_mask((4, 8, 8), rng)
        assert (mask == mask[:1]).all()  # the same blocks at every time step
        ratios.append(mask.mean())
    assert 0.5 < np.mean(ratios) < 0.95


def test_context_encoder_never_sees_masked_tokens():
    enc, _ = small()
    x = torch.rand(1, 8, 3, 64, 64)
    keep, masked = sample_masks(enc.grid(8), 1, np.random.default_rng(1))
    hidden = torch.zeros(64, dtype=torch.bool)
    hidden[masked[0]] = True
    pixel_mask = (
        hidden.view(4, 4, 4).repeat_interleave(2, 0).repeat_interleave(16, 1).repeat_interleave(16, 2)
    )
    y = torch.where(pixel_mask[None, :, None], torch.rand_like(x), x)  # change only the masked pixels
    assert not torch.allclose(x, y)
    assert torch.allclose(enc(x, keep), enc(y, keep), atol=1e-6)


def test_target_encoder_gets_no_gradient_and_follows_by_ema():
    enc, pred = small()
    target = make_target(enc)
    loss, _ = jepa_loss(enc, pred, target, torch.rand(2, 8, 3, 64, 64), np.random.default_rng(0))
    loss.backward()
    assert all(p.grad is None for p in target.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())
    with torch.no_grad():
        for p in enc.parameters():
            p.add_(1.0)
    before = [p.clone() for p in target.parameters()]
    ema_update(target, enc, 0.9)
    for b, t, o in zip(before, target.parameters(), enc.parameters(), strict=True):
        assert torch.allclose(t, 0.9 * b + 0.1 * o)
    assert momentum_at(0, 100, 0.99) == 0.99 and momentum_at(100, 100, 0.99) == 1.0


def test_jepa_loss_falls_on_a_fixed_batch():
    enc, pred = small()
    target = make_target(enc)
    opt = torch.optim.AdamW(list(enc.parameters()) + list(pred.parameters()), lr=2e-3)
    x = torch.rand(2, 4, 3, 64, 64)  # a short clip keeps the test fast: (2, 4, 4) tokens
    losses = []
    for _ in range(20):
        loss, _ = jepa_loss(enc, pred, target, x, np.random.default_rng(0))  # the same mask every step
        opt.zero_grad()
        loss.backward()
        opt.step()
        ema_update(target, enc, 0.99)
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_feature_spread_sees_collapse():
    assert feature_spread(torch.ones(8, 4, 6)) == 0.0
    assert feature_spread(torch.randn(8, 4, 6)) > 0.5


def test_block_causal_mask_and_ac_loss_falls():
    allowed = block_causal(3, 2)
    assert allowed[0, 1] and not allowed[1, 2] and allowed[5, 0] and not allowed[3, 4]
    torch.manual_seed(0)
    ac = ACPredictor(enc_dim=16, n_patches=4, dim=32, depth=1, heads=4)
    z, a, s = torch.randn(4, 5, 4, 16), torch.rand(4, 5, 2) * 2 - 1, torch.rand(4, 5, 4)
    z = z + torch.cumsum(a, 1)[:, :, None, :1]  # the features move with the actions
    opt = torch.optim.AdamW(ac.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        loss = ac_losses(ac, z, a, s)["total"]
        first = first or loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.7 * first


def test_block_causal_prediction_ignores_the_future():
    torch.manual_seed(0)
    ac = ACPredictor(enc_dim=16, n_patches=4, dim=32, depth=1, heads=4)
    torch.nn.init.normal_(ac.render[2].weight)
    z, a, s = torch.randn(1, 4, 4, 16), torch.rand(1, 4, 2), torch.rand(1, 4, 4)
    z2 = z.clone()
    z2[:, 3] += 1.0  # change only the last frame
    assert torch.allclose(ac(z, a, s)[0][:, :3], ac(z2, a, s)[0][:, :3], atol=1e-5)
    assert not torch.allclose(ac(z, a, s)[0][:, 3], ac(z2, a, s)[0][:, 3], atol=1e-5)  # but it is seen


def test_cem_finds_the_minimum_of_a_quadratic():
    goal = torch.tensor([0.3, -0.5])
    plan = cem(
        lambda x: ((x - goal) ** 2).sum((2, 3)), torch.zeros(1, 2, 2), gen=torch.Generator().manual_seed(0)
    )
    assert torch.allclose(plan[0], goal.expand(2, 2), atol=0.1)


def test_standardised_frame_features():
    from training import encode_trajectories, feature_stats

    enc, _ = small()
    frames = np.random.default_rng(0).integers(0, 255, size=(3, 2, 64, 64, 3), dtype=np.uint8)
    z = encode_trajectories(enc, frames, "cpu")
    assert z.shape == (3, 2, 16, 48)
    zs = encode_trajectories(enc, frames, "cpu", feature_stats(z))
    assert zs.mean((0, 1)).abs().max() < 1e-4 and (zs.std((0, 1)) - 1).abs().max() < 1e-2


def test_domain_randomisation_targets_come_from_the_other_view():
    """The context encoder reads ``clips``; the targets come from ``target_clips`` (the other scene)."""
    enc, pred = small()
    target = make_target(enc)
    x, x_alt = torch.rand(1, 4, 3, 64, 64), torch.rand(1, 4, 3, 64, 64)
    losses = [
        jepa_loss(enc, pred, target, x, np.random.default_rng(0), target_clips=v)[1] for v in (x, x_alt, None)
    ]
    assert not torch.allclose(losses[0], losses[1]) and torch.allclose(losses[0], losses[2])


def test_the_ac_predictor_holds_no_simulator_constant():
    """No step size inside: the next proprioception comes from a learned layer, so a predictor at init
    with that layer zeroed predicts "no motion" whatever the action."""
    from models.ac_predictor import fourier

    assert fourier(torch.rand(3, 5, 4), 2).shape == (3, 5, 4 * (1 + 2 * 2))
    ac = ACPredictor(enc_dim=16, n_patches=4, dim=32, depth=1, heads=4)
    assert not any("scale" in name for name in vars(ac))
    torch.nn.init.zeros_(ac.s_out.weight), torch.nn.init.zeros_(ac.s_out.bias)
    s = torch.rand(2, 3, 4)
    _, s_next = ac(torch.randn(2, 3, 4, 16), torch.ones(2, 3, 2), s)
    assert torch.allclose(s_next, s)


def test_rendered_energy_prefers_the_plan_that_reaches_the_goal():
    """The ceiling's energy (true simulator, no predictor): the plan that ends on the goal pose has the
    lower L1 energy, and with no nuisance its last imagined frame adds nothing (it is the goal)."""
    from evaluate import rendered_energy

    from data_utils import Nuisance, render_many, step_joints

    scene = Nuisance.sample(np.random.default_rng(0), on=False)

    def encode(frames):  # (M, 64, 64, 3) uint8 -> (M, 16, 48): 16x16 px patches, downsampled 4x
        x = torch.from_numpy(frames[:, ::4, ::4]).float() / 255  # (M, 16, 16, 3)
        return x.reshape(len(x), 4, 4, 4, 4, 3).permute(0, 1, 3, 2, 4, 5).reshape(len(x), 16, 48)

    q_now, toward = np.array([[0.3, 1.0]]), np.array([[1.0, 0.5], [1.0, 0.5]])  # (B=1, 2), (H=2, 2)
    goal = step_joints(step_joints(q_now[0], toward[0]), toward[1])
    z_goal = encode(render_many(goal[None], scene))  # (1, 16, 48)
    samples = torch.tensor(np.stack([toward, -toward])[None], dtype=torch.float32)  # (1, S=2, H=2, 2)
    energy = rendered_energy(encode, q_now, [scene], z_goal)
    cost, first = energy(samples), energy(samples[:, :, :1])  # (1, 2) each
    assert cost[0, 0] < cost[0, 1] and torch.isclose(cost[0, 0], first[0, 0], atol=1e-6)
