"""Chapter 2 models: chapter 1's FSQ codec (copied) and the latent dynamics transformer."""

from .codec import Decoder, Encoder, check_frames, empty_cells, weighted_mse
from .fsq import FSQ, FSQAutoencoder, round_ste
from .transformer import (
    LatentDynamics,
    causal_mask,
    classification_loss,
    latents_to_tokens,
    snap_to_grid,
    tokens_to_digits,
    tokens_to_latents,
)

__all__ = [
    "FSQ",
    "Decoder",
    "Encoder",
    "FSQAutoencoder",
    "LatentDynamics",
    "causal_mask",
    "empty_cells",
    "check_frames",
    "classification_loss",
    "latents_to_tokens",
    "round_ste",
    "snap_to_grid",
    "tokens_to_digits",
    "tokens_to_latents",
    "weighted_mse",
]
