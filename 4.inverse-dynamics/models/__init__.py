"""Chapter 4 models: the conv trunk, the inverse dynamics model and overlay reader, the latent action model
(with FSQ or VQ) and its pixel decoder, and the pay-off's learned dynamics model of the robot's state."""

from .dynamics import ConvDynamics, weighted_mse
from .fsq import FSQ, round_ste
from .idm import InverseDynamics, OverlayReader
from .lam import LatentActionModel, perplexity
from .state_dynamics import StateDynamics, dream
from .trunk import ConvTrunk, check_frames, check_pair, pair_input
from .vq import VectorQuantizer

__all__ = [
    "FSQ",
    "ConvDynamics",
    "ConvTrunk",
    "InverseDynamics",
    "LatentActionModel",
    "OverlayReader",
    "StateDynamics",
    "VectorQuantizer",
    "check_frames",
    "check_pair",
    "dream",
    "pair_input",
    "perplexity",
    "round_ste",
    "weighted_mse",
]
