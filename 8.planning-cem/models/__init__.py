"""This chapter's world model (encoder, position head, latent action predictor)."""

from .world_model import Encoder, WorldModel, check_frames

__all__ = ["Encoder", "WorldModel", "check_frames"]
