"""The losses of losses.py: what a missed ball pixel and a wrongly lit pixel cost; the context noise."""

import torch
from losses import noisy_context, pixel_loss


class FixedDecoder:
    """Stands in for the codec: decodes any latent to one fixed frame, so the test controls the picture."""

    def __init__(self, frame: torch.Tensor):
        self.frame = frame  # (1, 3, 64, 64)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, 4, 16, 16) -> the fixed frame repeated (B, 3, 64, 64)."""
        return self.frame.expand(len(z), -1, -1, -1)


def test_lit_weight_charges_wrongly_lit_pixels_and_keeps_missed_balls_at_20x():
    truth = torch.zeros(1, 1, 3, 64, 64)  # (B, T, 3, H, W) one white ball pixel on black
    truth[..., 10, 10] = 1.0
    missed = torch.zeros(1, 3, 64, 64)  # the prediction forgets the ball
    ghost = truth[0].clone()
    ghost[..., 40, 40] = 1.0  # the prediction keeps the ball and lights one background pixel too
    pred = torch.zeros(1, 1, 256, 4)  # (B, T, N, P) any latent: the stub decoder ignores it
    n = 3 * 64 * 64

    def cost(frame, lit):
        return pixel_loss(FixedDecoder(frame), pred, truth, lit).item() * n  # summed over pixels

    assert abs(cost(missed, 1.0) - 3 * 20) < 1e-3  # 3 channels of a missed ball pixel, 20x each
    assert abs(cost(ghost, 1.0) - 3 * 1) < 1e-3  # a wrongly lit pixel costs 1x: hedging is cheap
    assert abs(cost(ghost, 5.0) - 3 * 5) < 1e-3  # with lit_weight 5 it costs 5x
    assert abs(cost(missed, 5.0) - 3 * 20) < 1e-3  # and a missed ball still costs 20x


def test_context_noise_has_one_level_per_clip_up_to_sigma_max():
    torch.manual_seed(0)
    ctx = torch.zeros(64, 3, 256, 4)  # (B, T, N, P)
    assert torch.equal(noisy_context(ctx, 0.0), ctx)  # level 0: the context unchanged
    std = noisy_context(ctx, 0.1).flatten(1).std(dim=1)  # (B,) the level each clip was given
    assert std.max() < 0.105 and std.min() < 0.03 and std.max() > 0.07  # spread over [0, 0.1]
