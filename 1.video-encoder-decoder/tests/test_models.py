"""Model tests: FSQ rounding and gradients, the VAE's KL, shapes, learning, bad input."""

import pytest
import torch

from models import FSQ, VAE, FSQAutoencoder, kl_to_standard_normal, round_ste, weighted_mse


def test_fsq_rounds_to_exactly_the_given_levels():
    fsq = FSQ(levels=(8, 5, 3))
    z = torch.linspace(-20, 20, 4001).view(1, 1, 1, -1).expand(1, 3, 1, -1)  # (1, D, 1, W) sweep
    zq = fsq(z)
    half_width = torch.tensor([4, 2, 1]).view(1, -1, 1, 1)
    grid = zq * half_width
    assert torch.allclose(grid, grid.round(), atol=1e-5)  # every value sits on the integer grid
    for d, levels in enumerate((8, 5, 3)):
        assert zq[0, d].unique().numel() == levels  # and all levels are reachable
    assert zq.abs().max() <= 1.0


def test_fsq_straight_through_gradient_is_that_of_the_bound():
    fsq = FSQ(levels=(8, 5, 5, 5))
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    fsq(z).sum().backward()
    z2 = z.detach().clone().requires_grad_(True)
    half_width = torch.tensor([4.0, 2, 2, 2]).view(1, -1, 1, 1)
    (fsq.bound(z2) / half_width).sum().backward()  # the same function without the rounding
    assert torch.allclose(z.grad, z2.grad) and z.grad.abs().min() > 0
    x = torch.tensor([0.3, 1.7], requires_grad=True)
    round_ste(x).sum().backward()
    assert torch.equal(round_ste(x.detach()), torch.tensor([0.0, 2.0]))
    assert torch.equal(x.grad, torch.ones(2))  # rounding passes the gradient straight through


def test_fsq_indices_round_trip_and_cover_the_codebook():
    fsq = FSQ(levels=(8, 5, 5, 5))
    idx = torch.arange(fsq.codebook_size).view(1, 10, 100)  # (B, h, w) every code once
    codes = fsq.indices_to_codes(idx)
    assert codes.shape == (1, 4, 10, 100)
    assert torch.equal(fsq.codes_to_indices(codes), idx)


def test_vae_kl_matches_closed_form_and_torch_distributions():
    assert kl_to_standard_normal(torch.zeros(1), torch.zeros(1)).item() == 0.0  # q == prior
    # mu = 1, sigma = 1: KL = 0.5 * mu^2 = 0.5
    assert kl_to_standard_normal(torch.ones(1), torch.zeros(1)).item() == pytest.approx(0.5)
    mu, logvar = torch.randn(50), torch.randn(50)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros(50), torch.ones(50))
    assert torch.allclose(
        kl_to_standard_normal(mu, logvar), torch.distributions.kl_divergence(q, p), atol=1e-5
    )


def test_shapes():
    x = torch.rand(2, 3, 64, 64)
    vae, fsq_ae = VAE(latent_dim=4, ch=8), FSQAutoencoder(levels=(8, 5, 5, 5), ch=8)
    out = vae(x)
    assert out["recon"].shape == (2, 3, 64, 64)
    assert out["mu"].shape == out["logvar"].shape == out["z"].shape == (2, 4, 16, 16)
    out = fsq_ae(x)
    assert out["recon"].shape == (2, 3, 64, 64) and out["z"].shape == (2, 4, 16, 16)
    idx = fsq_ae.encode_indices(x)
    assert idx.shape == (2, 16, 16) and idx.dtype == torch.long and 0 <= idx.min() and idx.max() < 1000


@pytest.mark.parametrize("model_cls", [VAE, FSQAutoencoder])
def test_loss_falls_on_a_fixed_batch(model_cls):
    torch.manual_seed(0)
    model = model_cls(ch=16)
    x = torch.zeros(8, 3, 64, 64)
    x[:, :, 20:30, 30:40] = torch.rand(8, 3, 1, 1)  # coloured squares on black
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(40):
        loss = weighted_mse(model(x)["recon"], x, fg_weight=20.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]


def test_weighted_mse_counts_the_foreground_more():
    target = torch.zeros(1, 3, 4, 4)
    target[..., 0, 0] = 1.0  # one white pixel
    miss_object = torch.zeros_like(target)  # erases the white pixel
    miss_background = target.clone()
    miss_background[..., 3, 3] = 1.0  # paints one background pixel
    assert weighted_mse(miss_object, target, 1.0) == weighted_mse(miss_background, target, 1.0)
    assert weighted_mse(miss_object, target, 20.0) == 20 * weighted_mse(miss_background, target, 20.0)


@pytest.mark.parametrize(
    "bad",
    [
        torch.rand(2, 64, 64, 3),
        torch.rand(3, 64, 64),
        torch.rand(2, 3, 32, 32),
        torch.zeros(2, 3, 64, 64).byte(),
    ],
)
def test_encoder_rejects_bad_frames_with_the_expected_shape(bad):
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 64\)"):
        VAE(ch=8)(bad)
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 64\)"):
        FSQAutoencoder(ch=8).encode(bad)
