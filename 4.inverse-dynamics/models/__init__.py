"""Chapter 4 models: the conv trunk, the inverse dynamics model and overlay reader, the latent action model
(with FSQ or VQ), and the small action-conditioned dynamics model of the pay-off."""

from .dynamics import ActionDynamics, ConvDynamics, rollout, weighted_mse
from .fsq import FSQ, round_ste
from .idm import InverseDynamics, OverlayReader
from .lam import LatentActionModel, perplexity
from .trunk import ConvTrunk, check_frames, check_pair, pair_input
from .vq import VectorQuantizer

__all__ = [
    "FSQ",
    "ActionDynamics",
    "ConvDynamics",
    "ConvTrunk",
    "InverseDynamics",
    "LatentActionModel",
    "OverlayReader",
    "VectorQuantizer",
    "check_frames",
    "check_pair",
    "pair_input",
    "perplexity",
    "rollout",
    "round_ste",
    "weighted_mse",
]
