"""Chapter 3 models: the FSQ codec (copied from chapter 1), the action encoder, the
action-conditioned dynamics transformer and the rollout helpers."""

from .actions import ActionEncoder
from .codec import Decoder, Encoder, check_frames, weighted_mse
from .fsq import FSQ, FSQAutoencoder, round_ste
from .rollout import counterfactual_spread, rollout, snap_ste
from .transformer import (
    METHODS,
    ActionDynamics,
    causal_mask,
    classification_loss,
    latents_to_tokens,
    snap_to_grid,
    tokens_to_digits,
    tokens_to_latents,
)

__all__ = [
    "FSQ",
    "METHODS",
    "ActionDynamics",
    "ActionEncoder",
    "Decoder",
    "Encoder",
    "FSQAutoencoder",
    "causal_mask",
    "check_frames",
    "classification_loss",
    "counterfactual_spread",
    "latents_to_tokens",
    "round_ste",
    "rollout",
    "snap_ste",
    "snap_to_grid",
    "tokens_to_digits",
    "tokens_to_latents",
    "weighted_mse",
]
