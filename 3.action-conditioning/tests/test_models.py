"""Model tests: shapes, the causal mask, learning, bad actions, and the counterfactual test."""

import pytest
import torch

from models import (
    ActionDynamics,
    FSQAutoencoder,
    causal_mask,
    classification_loss,
    counterfactual_spread,
    latents_to_tokens,
    rollout,
    snap_to_grid,
    tokens_to_digits,
    tokens_to_latents,
)

LEVELS = (8, 5, 5, 5)


def random_tokens(b=2, t=3) -> torch.Tensor:
    """Valid FSQ tokens (B, T, 256, 4): every value on its channel's grid."""
    half = torch.tensor([4, 2, 2, 2])
    digits = torch.stack([torch.randint(0, lv, (b, t, 256)) for lv in LEVELS], dim=-1)  # (B, T, N, D)
    return (digits - half).float() / half


def actions_for(kind, b=2, t=3):
    """Random valid actions: (B, T) int64 or (B, T, 2) float in [-1, 1]."""
    return torch.randint(0, 5, (b, t)) if kind == "discrete" else torch.rand(b, t, 2) * 2 - 1


def small(method, kind="discrete", head="classification", **kw):
    """A tiny model for fast tests."""
    return ActionDynamics(method, kind, dim=32, depth=2, heads=2, max_frames=3, head=head, **kw)


def test_tokens_round_trip_and_snap():
    z = torch.randn(2, 3, 4, 16, 16)
    assert torch.equal(tokens_to_latents(latents_to_tokens(z)), z)
    tok = random_tokens()
    assert torch.equal(snap_to_grid(tok + 0.05 * torch.randn_like(tok).clamp(-1, 1), LEVELS), tok)


@pytest.mark.parametrize("method", ["concat", "token", "film", "none"])
@pytest.mark.parametrize("kind", ["discrete", "continuous"])
def test_shapes(method, kind):
    tok, acts = random_tokens(), actions_for(kind)
    assert small(method, kind, "regression")(tok, acts).shape == (2, 3, 256, 4)
    cls = small(method, kind)
    assert cls(tok, acts).shape == (2, 3, 256, 1, sum(LEVELS))
    assert rollout(cls, tok[:, 0], actions_for(kind, t=5)).shape == (2, 5, 256, 4)


def test_codec_and_space_mixing_wrap_around_the_torus():
    """Shifting a frame by one 4-px cell shifts its latent grid by one cell, edges included (the dot
    world is a torus); the dynamics model's space mixing wraps the same way."""
    torch.manual_seed(0)
    codec = FSQAutoencoder(LEVELS, ch=8).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        z, z_shift = codec.encoder(x), codec.encoder(torch.roll(x, (4, -8), dims=(2, 3)))
        assert torch.allclose(torch.roll(z, (1, -2), dims=(2, 3)), z_shift, atol=1e-5)
        y, y_shift = codec.decode(z), codec.decode(torch.roll(z, (1, -2), dims=(2, 3)))
        assert torch.allclose(torch.roll(y, (4, -8), dims=(2, 3)), y_shift, atol=1e-5)
    space = small("film").blocks[0].space
    grid = torch.zeros(1, 32, 16, 16)
    grid[..., 0, 15] = 1.0  # a feature in the top-right cell
    with torch.no_grad():  # its 3x3 neighbourhood wraps to the bottom row and the left column
        assert (space(grid) - space(torch.zeros_like(grid)))[0, :, 15, 0].abs().sum() > 0


def test_causal_mask():
    expected = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    assert torch.equal(causal_mask(3), expected)


@pytest.mark.parametrize("method", ["concat", "token", "film"])
def test_the_future_cannot_change_the_past(method):
    torch.manual_seed(0)
    model = small(method).eval()
    for p in model.parameters():  # FiLM starts as the identity: give it weights so the action matters
        torch.nn.init.normal_(p, std=0.1)
    tok, acts = random_tokens(), actions_for("discrete")
    tok2, acts2 = tok.clone(), acts.clone()
    tok2[:, 2], acts2[:, 2] = random_tokens(t=1)[:, 0], (acts[:, 2] + 1) % 5  # change frame 2 and a_2
    with torch.no_grad():
        a, b = model(tok, acts), model(tok2, acts2)
    assert torch.allclose(a[:, :2], b[:, :2], atol=1e-6)  # predictions made at frames 0, 1 unchanged
    assert not torch.allclose(a[:, 2:], b[:, 2:])  # the one made at frame 2 sees the change

    acts3 = acts.clone()
    acts3[:, 2] = (acts[:, 2] + 1) % 5  # only the last action: a_2 must reach frame 2's prediction alone
    with torch.no_grad():
        c = model(tok, acts3)
    assert torch.allclose(a[:, :2], c[:, :2], atol=1e-6)  # a_2 cannot reach the predictions at frames 0, 1
    assert not torch.allclose(a[:, 2], c[:, 2])  # and the prediction at frame 2 reads it


@pytest.mark.parametrize("head", ["classification", "regression"])
def test_loss_falls_on_a_fixed_batch(head):
    torch.manual_seed(0)
    model = small("film", head=head)
    tok, acts = random_tokens(b=4, t=4), actions_for("discrete", b=4, t=3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        out = model(tok[:, :-1], acts)
        if head == "classification":
            loss = classification_loss(out, tokens_to_digits(tok[:, 1:], LEVELS), LEVELS)
        else:
            loss = (out - tok[:, 1:]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses[::10]


def test_bad_actions_are_value_errors_naming_the_shape():
    tok = random_tokens()
    disc, cont = small("film"), small("film", "continuous")
    with pytest.raises(ValueError, match=r"shape \(B, T\) = \(2, 3\)"):
        disc(tok, torch.zeros(2, 2, dtype=torch.long))  # one action short
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        disc(tok, torch.full((2, 3), 5))  # out of range
    with pytest.raises(ValueError, match="integer"):
        disc(tok, torch.zeros(2, 3))  # float for a discrete action
    with pytest.raises(ValueError, match=r"\(B, T, 2\)"):
        cont(tok, torch.zeros(2, 3, 3))  # three numbers per action
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        cont(tok, torch.full((2, 3, 2), 1.5))  # out of range
    with pytest.raises(ValueError, match="expected tokens"):
        disc(torch.zeros(2, 3, 16, 32), torch.zeros(2, 3, dtype=torch.long))


def test_counterfactual_spread_catches_a_model_that_ignores_its_action():
    """Same start, different actions: an action-blind model dreams one future, a trained one several."""
    torch.manual_seed(0)
    start = random_tokens(b=4, t=1)[:, 0]  # (4, N, P)
    acts = torch.arange(5).repeat(4)  # every start under every action
    starts = start.repeat_interleave(5, 0)
    target = random_tokens(b=5, t=1)[:, 0][acts]  # the next frame depends only on the action
    spreads = {}
    for method in ("none", "film"):
        model = small(method)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(40):  # learn the action -> next frame table on this tiny batch
            out = model(starts[:, None], acts[:, None])[:, 0]
            loss = classification_loss(out, tokens_to_digits(target, LEVELS), LEVELS)
            opt.zero_grad()
            loss.backward()
            opt.step()
        spreads[method] = counterfactual_spread(model.eval(), start, torch.arange(5), steps=1)
    assert spreads["none"] < 1e-6  # blind: every action gives the same dream
    assert spreads["film"] > 0.1, spreads  # uses the action: different dreams
