"""Chapter 6's models: the V-JEPA encoder, masks and predictor, the attentive probe, V-JEPA 2-AC and CEM."""

from .ac_predictor import ACPredictor, ac_losses, block_causal
from .cem import cem
from .encoder import TUBELET, VideoEncoder
from .masking import multiblock_mask, sample_masks
from .predictor import MaskedPredictor
from .probe import AttentiveProbe
from .vit import Attention, Transformer, sincos_3d

__all__ = [
    "ACPredictor",
    "Attention",
    "AttentiveProbe",
    "MaskedPredictor",
    "TUBELET",
    "Transformer",
    "VideoEncoder",
    "ac_losses",
    "block_causal",
    "cem",
    "multiblock_mask",
    "sample_masks",
    "sincos_3d",
]
