"""Model tests: tokens, the block-causal mask, the heads, learning on a fixed batch."""

import pytest
import torch

from models import (
    FSQAutoencoder,
    LatentDynamics,
    causal_mask,
    classification_loss,
    empty_cells,
    latents_to_tokens,
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


def test_tokens_round_trip_one_token_per_cell():
    z = torch.randn(2, 3, 4, 16, 16)
    tok = latents_to_tokens(z)
    assert tok.shape == (2, 3, 256, 4)
    assert torch.equal(tokens_to_latents(tok), z)
    assert torch.equal(tok[0, 0, 16 * 2 + 5], z[0, 0, :, 2, 5])  # token 37 is the cell at row 2, column 5


def test_causal_mask():
    expected = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    assert torch.equal(causal_mask(3), expected)


@pytest.mark.parametrize("head", ["regression", "classification"])
def test_the_future_cannot_change_the_past(head):
    torch.manual_seed(0)
    model = LatentDynamics(head, LEVELS, dim=32, depth=2, max_frames=4).eval()
    tok = random_tokens(t=4)
    changed = tok.clone()
    changed[:, 2] = random_tokens(t=1)[:, 0]  # a different frame 2
    with torch.no_grad():
        a, b = model(tok), model(changed)
    assert torch.allclose(a[:, :2], b[:, :2], atol=1e-6)  # predictions made at frames 0..1 unchanged
    assert not torch.allclose(a[:, 2:], b[:, 2:])  # later ones do see frame 2


def test_shapes_and_predict_next():
    tok = random_tokens(t=3)
    reg = LatentDynamics("regression", LEVELS, dim=32, depth=1, max_frames=3)
    cls = LatentDynamics("classification", LEVELS, dim=32, depth=1, max_frames=3)
    assert reg(tok).shape == (2, 3, 256, 4)
    assert cls(tok).shape == (2, 3, 256, sum(LEVELS))
    nxt = cls.predict_next(torch.cat([tok, tok], dim=1))  # a longer context: reads the last 3 frames
    assert nxt.shape == (2, 256, 4)
    on_grid = tokens_to_latents(nxt[:, None]) * torch.tensor([4.0, 2, 2, 2]).view(1, 1, 4, 1, 1)
    assert torch.equal(on_grid, on_grid.round())  # classification always yields valid FSQ codes


def test_digits_round_trip_through_logits():
    tok = random_tokens()
    digits = tokens_to_digits(tok, LEVELS)  # (B, T, N, D)
    logits = torch.cat(
        [torch.nn.functional.one_hot(digits[..., d], lv).float() * 50 for d, lv in enumerate(LEVELS)], -1
    )
    model = LatentDynamics("classification", LEVELS, dim=32, depth=1)
    assert torch.equal(model.logits_to_tokens(logits), tok)
    assert classification_loss(logits, digits, LEVELS) < 1e-6


@pytest.mark.parametrize("head", ["regression", "classification"])
def test_loss_falls_on_a_fixed_batch(head):
    torch.manual_seed(0)
    model = LatentDynamics(head, LEVELS, dim=32, depth=2, max_frames=3)
    first = tokens_to_latents(random_tokens(b=4, t=1))  # (4, 1, D, 16, 16)
    # a learnable "video": the pattern slides one cell to the right every frame
    tok = latents_to_tokens(torch.cat([first.roll(k, dims=-1) for k in range(4)], dim=1))  # (4, 4, N, D)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        out = model(tok[:, :-1])
        if head == "regression":
            loss = (out - tok[:, 1:]).pow(2).mean()
        else:
            loss = classification_loss(out, tokens_to_digits(tok[:, 1:], LEVELS), LEVELS)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]


def test_bad_token_shape_is_a_value_error():
    with pytest.raises(ValueError, match="expected tokens"):
        LatentDynamics("regression", LEVELS, dim=32, depth=1)(torch.zeros(2, 3, 16, 64))
    with pytest.raises(ValueError, match="head"):
        LatentDynamics("diffusion", LEVELS)


def test_empty_space_has_one_code_and_continuous_latents_round_to_the_codes():
    torch.manual_seed(0)
    codec = FSQAutoencoder(LEVELS, ch=8).eval()
    x = torch.zeros(2, 3, 64, 64)
    x[1, 0, 30:36, 30:36] = 1.0  # a red square in frame 1, covering latent cells 7..8
    empty = empty_cells(x)  # (2, 1, 16, 16)
    assert empty[0].all() and not empty[1, 0, 8, 8] and empty[1, 0, 0, 0]
    with torch.no_grad():
        z, cont = codec.encode(x), codec.encode_continuous(x)  # (2, 4, 16, 16) each
    assert torch.equal(z[0], torch.zeros_like(z[0]))  # a black frame: the canonical code everywhere
    assert torch.equal(z[1, :, 0, 0], torch.zeros(4))  # far from the square too
    codes = latents_to_tokens(z[:, None])
    assert torch.allclose(snap_to_grid(latents_to_tokens(cont[:, None]), LEVELS), codes, atol=1e-6)
