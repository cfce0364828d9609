"""Chapter 5 models: the small ViT and its DINO training parts, the feature predictor with its
frame-level causal mask, the pixel decoder, and the CEM planner."""

from .cem import cem
from .decoder import FeatureDecoder
from .dino import (
    DINOHead,
    dino_loss,
    ema_update,
    ibot_patch_loss,
    random_patch_mask,
    update_center,
)
from .predictor import FeaturePredictor, frame_causal_mask, rollout
from .vit import ViT, check_frames

__all__ = [
    "DINOHead",
    "FeatureDecoder",
    "FeaturePredictor",
    "ViT",
    "cem",
    "check_frames",
    "dino_loss",
    "ema_update",
    "frame_causal_mask",
    "ibot_patch_loss",
    "random_patch_mask",
    "rollout",
    "update_center",
]
