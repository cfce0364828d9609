"""The two extra losses of chapter 2's regression model: the pixel loss and the open-loop rollout loss.

Shape key: B batch, T time (frames), N tokens per frame (256 latent cells), P values per token (4).
train.py uses both: teacher forcing adds ``pixel_loss`` to the latent MSE; the rollout fine-tune adds
``rollout_loss``, which applies ``pixel_loss`` to every unrolled frame too.
"""

from __future__ import annotations

import torch

from models import FSQAutoencoder, LatentDynamics, snap_to_grid, tokens_to_latents, weighted_mse

LEVELS = (8, 5, 5, 5)  # FSQ levels of the codec: 1000 codes, 4 channels per latent cell


def rollout_loss(
    model: LatentDynamics, clip: torch.Tensor, context: int, steps: int, pix=None, first=None
) -> torch.Tensor:
    """Feed the model its own predictions for ``steps`` frames and penalise every one of them.

    Teacher forcing only ever shows the model true context, so at test time, when its inputs are its
    own slightly wrong predictions, errors compound. Unrolling in training (gradients flow through the
    predictions) teaches it to correct its own drift.

    Args: clip (B, T, N, P) true tokens with T >= context + steps. pix: None, or (weight, codec, frames
        (B, T, 3, 64, 64), lit_weight) to add the pixel loss on every unrolled frame: with latent MSE
        alone the unroll taught the model to fade the balls (measured: 14.8 px at horizon 5, 6.1 px with it).
        first: None, or the model's prediction (B, 1, N, P) from the true context, when the caller has
        already computed it (teacher forcing's last prediction is exactly the unroll's first step).
    """
    seq, loss = clip[:, :context], 0.0
    for k in range(steps):
        if k == 0 and first is not None:
            nxt = first  # the same forward pass as teacher forcing's last prediction: reuse it
        else:
            nxt = model(seq[:, -model.max_frames :])[:, -1:]  # (B, 1, N, P) prediction of frame context + k
        loss = loss + (nxt - clip[:, context + k : context + k + 1]).pow(2).mean()
        if pix is not None:
            weight, codec, frames, lit = pix
            loss = loss + weight * pixel_loss(codec, nxt, frames[:, context + k : context + k + 1], lit)
        seq = torch.cat([seq, nxt], dim=1)
    return loss / steps


def noisy_context(context: torch.Tensor, sigma_max: float) -> torch.Tensor:
    """Noise augmentation of the context (GameNGen's cure for autoregressive drift): add Gaussian noise
    of a level drawn per clip from [0, sigma_max] to the context tokens (B, T, N, P).

    The targets stay clean, so the model learns to *correct* a slightly wrong context instead of
    copying its error forward, as it must when it dreams on its own predictions.
    """
    sigma = sigma_max * torch.rand(len(context), 1, 1, 1, device=context.device)  # (B, 1, 1, 1)
    return context + sigma * torch.randn_like(context)


def pixel_loss(
    codec: FSQAutoencoder, pred: torch.Tensor, frames: torch.Tensor, lit_weight: float = 1.0
) -> torch.Tensor:
    """Decode predicted latents with the frozen codec and compare pixels, balls weighted 20x.

    Latent MSE counts every cell alike; this loss counts what the prediction *looks* like, so a ball
    that is drawn faded or too far back costs more than a latent that decodes to the same black.
    Rounding to the FSQ grid is straight-through, as in FSQ itself.

    The 20x weight sits on pixels that are bright in the *truth*, so a missed ball pixel costs 20 and
    a background pixel the prediction lights up wrongly costs 1: hedging is cheap, and an uncertain
    ball is drawn as a large blob. ``lit_weight`` charges such wrongly lit pixels more (by how bright
    the prediction draws them). 20 is symmetric: used from the first step it erased the balls (10.6 px
    at horizon 5); the rollout fine-tune uses 5 (a pilot from one teacher-forced model: 2.57 px and an
    MSE ratio of 0.88, against 2.81 and 1.07 with 1; 10 and 20 lower the MSE ratio further but move
    the balls away).

    Args: pred (B, T, N, P) continuous latent tokens; frames (B, T, 3, 64, 64) true frames in [0, 1].
    """
    codes = pred + (snap_to_grid(pred, LEVELS) - pred).detach()  # (B, T, N, P) rounded, gradient as identity
    recon = codec.decode(tokens_to_latents(codes).flatten(0, 1))  # (B*T, 3, 64, 64)
    target = frames.flatten(0, 1)  # (B*T, 3, 64, 64)
    loss = weighted_mse(recon, target, fg_weight=20.0)  # chapter 1's loss: missed ball pixels cost 20x
    if lit_weight == 1.0:
        return loss
    truth_lit = target.amax(dim=1, keepdim=True)  # (B*T, 1, 64, 64) brightness of the truth
    pred_lit = recon.detach().clamp(0, 1).amax(dim=1, keepdim=True)  # a weight, so no gradient through it
    wrongly_lit = pred_lit * (1.0 - truth_lit)  # (B*T, 1, 64, 64) bright in the prediction, dark in the truth
    return loss + ((lit_weight - 1.0) * wrongly_lit * (recon - target).pow(2)).mean()  # their extra cost
